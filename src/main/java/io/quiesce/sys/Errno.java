package io.quiesce.sys;

import io.quiesce.sys.linux.LinuxH;

import java.io.IOException;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.net.SocketTimeoutException;

/**
 * errno values, their names and messages, and the one place where a failed call becomes an
 * exception: {@link #socketException} for socket calls (the {@code java.net} types),
 * {@link #check} for the others ({@link SyscallException}), {@link #timedOut} for Quiesce's own
 * timeouts. Every one of them is a {@link SyscallFailure}; names and messages are looked up from
 * glibc once per errno. The values come from the generated bindings, so they are the ones this
 * platform's headers define.
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
    public static final int ECANCELED = LinuxH.ECANCELED();
    public static final int ECONNREFUSED = LinuxH.ECONNREFUSED();
    public static final int EHOSTUNREACH = LinuxH.EHOSTUNREACH();
    public static final int EALREADY = LinuxH.EALREADY();
    public static final int EINPROGRESS = LinuxH.EINPROGRESS();

    // Linked here rather than taken from the raw table: the raw layer reports failures through
    // this class, so a dependency back on it would make the two packages a cycle. Neither call
    // sets errno (glibc returns NULL for an unknown value), so neither captures it.
    private static final MethodHandle NAME = Linker.nativeLinker().downcallHandle(
            LinuxH.strerrorname_np$address(), LinuxH.strerrorname_np$descriptor());
    private static final MethodHandle DESCRIPTION = Linker.nativeLinker().downcallHandle(
            LinuxH.strerrordesc_np$address(), LinuxH.strerrordesc_np$descriptor());

    /** Names and messages of errno values below this are looked up once and kept. */
    private static final int CACHED = 256;
    private static final String[] NAMES = new String[CACHED];
    private static final String[] MESSAGES = new String[CACHED];
    /** {@code ": EPIPE (Broken pipe)"}, the errno half of every message, once per errno. */
    private static final String[] SUFFIXES = new String[CACHED];

    /**
     * Loaded with this class: the classes are made on failure paths, and a failure may be EMFILE,
     * when loading a class from a directory on the class path (it needs an fd) would fail too.
     */
    private static final Class<?>[] PRELOADED = {ConnectFailedException.class, BindFailedException.class,
            NoRouteFailedException.class, SocketFailedException.class, TimedOutException.class, SyscallException.class};

    private Errno() {}

    /** {@return the symbolic name of {@code errno}, e.g. {@code "EAGAIN"}, or {@code "E?<n>"}} */
    public static String name(int errno) {
        return cached(NAMES, NAME, errno, "E?");
    }

    /** {@return glibc's description of {@code errno}, e.g. {@code "Resource temporarily unavailable"}} */
    public static String message(int errno) {
        return cached(MESSAGES, DESCRIPTION, errno, "unknown error ");
    }

    private static String cached(String[] cache, MethodHandle h, int errno, String unknownPrefix) {
        int e = Math.abs(errno);
        String s = e < CACHED ? cache[e] : null;
        if (s == null) {
            s = lookup(h, e);
            s = s == null ? unknownPrefix + e : s;
            if (e < CACHED) {
                cache[e] = s; // a racing thread stores an equal string: harmless (String is immutable)
            }
        }
        return s;
    }

    private static String lookup(MethodHandle h, int errno) {
        try {
            var p = (MemorySegment) h.invokeExact(errno);
            return p.equals(MemorySegment.NULL) ? null : p.reinterpret(256).getString(0);
        } catch (Throwable t) {
            throw new AssertionError(t);
        }
    }

    /** {@return {@code "call(fd=7)"}, or {@code "call()"} for no fd} */
    static String callAndFd(String call, int fd) {
        return call + (fd >= 0 ? "(fd=" + fd + ")" : "()");
    }

    /** {@return the message of every failure: {@code "send(fd=7): EPIPE (Broken pipe)"}} */
    static String describe(String call, int fd, int errno) {
        int e = Math.abs(errno);
        String suffix = e < CACHED ? SUFFIXES[e] : null;
        if (suffix == null) {
            suffix = ": " + name(e) + " (" + message(e) + ")";
            if (e < CACHED) {
                SUFFIXES[e] = suffix;
            }
        }
        return callAndFd(call, fd) + suffix;
    }

    /**
     * Returns {@code result} if it is not negative, else throws for the {@code -errno} it carries.
     * For calls that are not socket operations (epoll, eventfd, close…), which have no
     * {@code java.net} type; a socket call goes through {@link #checkSocket}.
     *
     * @param result a value returned by a raw syscall: {@code >= 0} or {@code -errno}
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

    /**
     * Returns {@code result} if it is not negative, else throws {@link #socketException} for the
     * {@code -errno} it carries.
     *
     * @param result a value returned by a raw socket call
     * @param call the name of the call: its first word ({@code bind}, {@code connect}…) picks the type
     * @param fd the socket, or {@code -1} if none
     * @return {@code result}
     * @throws IOException the {@code java.net} exception for the errno, a {@link SyscallFailure}
     */
    public static int checkSocket(int result, String call, int fd) throws IOException {
        if (result < 0) {
            throw socketException(call, fd, -result);
        }
        return result;
    }

    /**
     * The one place a socket call's errno becomes an exception: the {@code java.net} type a Java
     * developer expects, always a {@link SyscallFailure} carrying the call, the fd and the errno.
     *
     * <table class="striped">
     *   <caption>type by call and errno</caption>
     *   <tr><th>call</th><th>errno</th><th>type</th></tr>
     *   <tr><td>{@code bind}, {@code listen}</td><td>EADDRINUSE, EADDRNOTAVAIL, EACCES</td>
     *       <td>{@link java.net.BindException}</td></tr>
     *   <tr><td>{@code connect}</td><td>ECONNREFUSED, ETIMEDOUT</td>
     *       <td>{@link java.net.ConnectException}</td></tr>
     *   <tr><td>{@code connect}</td><td>EADDRINUSE, EADDRNOTAVAIL (no local port left)</td>
     *       <td>{@link java.net.BindException}, as the JDK says</td></tr>
     *   <tr><td>any</td><td>ENETUNREACH, EHOSTUNREACH</td>
     *       <td>{@link java.net.NoRouteToHostException}</td></tr>
     *   <tr><td>any</td><td>anything else (ECONNRESET, EPIPE…)</td>
     *       <td>{@link java.net.SocketException}</td></tr>
     * </table>
     *
     * <p>Failures the peer or the network causes (ECONNRESET, EPIPE, ECONNABORTED, ETIMEDOUT,
     * ECONNREFUSED, ENETUNREACH, EHOSTUNREACH) are stackless: a server under a storm of resets
     * makes one per connection on the reactor thread, and their stack would only show the
     * reactor's loop. Local mistakes (EINVAL, EBADF, EADDRINUSE…) keep their stack. The message
     * is built only when asked for, from the errno's name and text looked up once.
     *
     * @param call the name of the call, e.g. {@code "connect"} or {@code "setsockopt(SO_RCVBUF)"};
     *        its first word picks the type
     * @param fd the socket, or {@code -1} if none
     * @param errno the (positive) errno
     * @return the exception, not thrown
     */
    public static IOException socketException(String call, int fd, int errno) {
        boolean stack = !peerCaused(errno);
        if (errno == ENETUNREACH || errno == EHOSTUNREACH) {
            return new NoRouteFailedException(call, fd, errno, stack);
        }
        String op = operation(call);
        boolean binding = op.equals("bind") || op.equals("listen");
        boolean connecting = op.equals("connect");
        if ((binding && (errno == EADDRINUSE || errno == EADDRNOTAVAIL || errno == EACCES))
                || (connecting && (errno == EADDRINUSE || errno == EADDRNOTAVAIL))) {
            return new BindFailedException(call, fd, errno, stack);
        }
        if (connecting && (errno == ECONNREFUSED || errno == ETIMEDOUT)) {
            return new ConnectFailedException(call, fd, errno, stack);
        }
        return new SocketFailedException(call, fd, errno, stack);
    }

    /**
     * A timeout Quiesce measured itself: a stackless {@link SocketTimeoutException} that is a
     * {@link SyscallFailure} with errno {@code ETIMEDOUT}.
     *
     * @param call what timed out, e.g. {@code "connect"} or {@code "read"}
     * @param fd the socket
     * @param what the rest of the message, e.g. {@code "nothing read for PT30S"}
     * @return the exception, not thrown
     */
    public static SocketTimeoutException timedOut(String call, int fd, String what) {
        return new TimedOutException(call, fd, what);
    }

    private static boolean peerCaused(int errno) {
        return errno == ECONNRESET || errno == EPIPE || errno == ECONNABORTED || errno == ETIMEDOUT
                || errno == ECONNREFUSED || errno == ENETUNREACH || errno == EHOSTUNREACH;
    }

    /** {@return the first word of a call's name: {@code "bind"} of {@code "bind(127.0.0.1:80)"}} */
    private static String operation(String call) {
        int end = 0;
        while (end < call.length() && (Character.isLetterOrDigit(call.charAt(end)) || call.charAt(end) == '_')) {
            end++;
        }
        return call.substring(0, end);
    }
}
