package io.quiesce.sys;

import io.quiesce.sys.linux.LinuxH;

import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;

/**
 * errno values, their names and messages, and the one place where a failed call becomes an
 * exception (STYLE habit 2). The values come from the generated bindings, so they are the ones
 * this platform's headers define.
 */
public final class Errno {
    public static final int EPERM = LinuxH.EPERM();
    public static final int ENOENT = LinuxH.ENOENT();
    public static final int EINTR = LinuxH.EINTR();
    public static final int EIO = LinuxH.EIO();
    public static final int EBADF = LinuxH.EBADF();
    public static final int EAGAIN = LinuxH.EAGAIN();
    public static final int ENOMEM = LinuxH.ENOMEM();
    public static final int EACCES = LinuxH.EACCES();
    public static final int EFAULT = LinuxH.EFAULT();
    public static final int EEXIST = LinuxH.EEXIST();
    public static final int EINVAL = LinuxH.EINVAL();
    public static final int ENFILE = LinuxH.ENFILE();
    public static final int EMFILE = LinuxH.EMFILE();
    public static final int EPIPE = LinuxH.EPIPE();
    public static final int EPROTO = LinuxH.EPROTO();
    public static final int ENOSYS = LinuxH.ENOSYS();
    public static final int ENOTSOCK = LinuxH.ENOTSOCK();
    public static final int EADDRINUSE = LinuxH.EADDRINUSE();
    public static final int EADDRNOTAVAIL = LinuxH.EADDRNOTAVAIL();
    public static final int ENETUNREACH = LinuxH.ENETUNREACH();
    public static final int ECONNABORTED = LinuxH.ECONNABORTED();
    public static final int ECONNRESET = LinuxH.ECONNRESET();
    public static final int ENOBUFS = LinuxH.ENOBUFS();
    public static final int EISCONN = LinuxH.EISCONN();
    public static final int ENOTCONN = LinuxH.ENOTCONN();
    public static final int ETIMEDOUT = LinuxH.ETIMEDOUT();
    public static final int ECONNREFUSED = LinuxH.ECONNREFUSED();
    public static final int EHOSTUNREACH = LinuxH.EHOSTUNREACH();
    public static final int EALREADY = LinuxH.EALREADY();
    public static final int EINPROGRESS = LinuxH.EINPROGRESS();

    private static final MethodHandle NAME = Syscalls.plain(
            LinuxH.strerrorname_np$address(), LinuxH.strerrorname_np$descriptor());
    private static final MethodHandle DESCRIPTION = Syscalls.plain(
            LinuxH.strerrordesc_np$address(), LinuxH.strerrordesc_np$descriptor());

    private Errno() {}

    /** {@return the symbolic name of {@code errno}, e.g. {@code "EAGAIN"}, or {@code "E?<n>"}} */
    public static String name(int errno) {
        String s = lookup(NAME, Math.abs(errno));
        return s == null ? "E?" + Math.abs(errno) : s;
    }

    /** {@return glibc's description of {@code errno}, e.g. {@code "Resource temporarily unavailable"}} */
    public static String message(int errno) {
        String s = lookup(DESCRIPTION, Math.abs(errno));
        return s == null ? "unknown error " + Math.abs(errno) : s;
    }

    private static String lookup(MethodHandle h, int errno) {
        try {
            var p = (MemorySegment) h.invokeExact(errno);
            return p.equals(MemorySegment.NULL) ? null : p.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /**
     * Returns {@code result} if it is not negative, else throws for the {@code -errno} it carries.
     *
     * @param result a value returned by a {@link Syscalls} method: {@code >= 0} or {@code -errno}
     * @param call the name of the call, for the message
     * @param fd the fd the call was made on, or {@code -1} if none
     * @return {@code result}
     * @throws SyscallException if {@code result < 0}
     */
    public static long check(long result, String call, int fd) throws SyscallException {
        if (result < 0) {
            throw new SyscallException(call, fd, (int) -result);
        }
        return result;
    }

    /** Same as {@link #check(long, String, int)} for an {@code int} result. */
    public static int check(int result, String call, int fd) throws SyscallException {
        if (result < 0) {
            throw new SyscallException(call, fd, -result);
        }
        return result;
    }
}
