package io.quiesce.sys.raw;

import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.itimerspec;
import io.quiesce.sys.linux.linger;
import io.quiesce.sys.linux.rlimit;
import io.quiesce.sys.linux.timespec;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

import static io.quiesce.sys.raw.Syscalls.linkFailure;
import static io.quiesce.sys.raw.Syscalls.plain;
import static io.quiesce.sys.raw.Syscalls.withErrno;

/**
 * The calls only tests (and benchmarks and examples, which compile with them) make: duplicating an
 * fd, pipes and socket pairs, {@code fcntl}, {@code recv}, timerfd, spawning a child that inherits
 * fds, and the fd limit. They are linked with the same package-private builders as
 * {@link Syscalls}, follow the same conventions ({@code -errno} on failure, every fd created
 * close-on-exec) and keep the library's raw table down to what the library calls.
 *
 * <p>An instance holds its own errno capture and scratch memory, so it belongs to one thread;
 * {@link #current()} is this thread's.
 */
public final class TestSyscalls {
    public static final int AF_UNIX = LinuxH.AF_UNIX();
    public static final int MSG_DONTWAIT = LinuxH.MSG_DONTWAIT();
    public static final int F_GETFD = LinuxH.F_GETFD();
    public static final int F_SETFD = LinuxH.F_SETFD();
    public static final int F_GETFL = LinuxH.F_GETFL();
    public static final int F_SETFL = LinuxH.F_SETFL();
    public static final int F_DUPFD_CLOEXEC = LinuxH.F_DUPFD_CLOEXEC();
    public static final int FD_CLOEXEC = LinuxH.FD_CLOEXEC();
    public static final int O_NONBLOCK = LinuxH.O_NONBLOCK();
    public static final int TFD_NONBLOCK = LinuxH.TFD_NONBLOCK();
    public static final int CLOCK_MONOTONIC = LinuxH.CLOCK_MONOTONIC();
    public static final int O_CLOEXEC = LinuxH.O_CLOEXEC();
    private static final int SOCK_CLOEXEC = LinuxH.SOCK_CLOEXEC();
    private static final int TFD_CLOEXEC = LinuxH.TFD_CLOEXEC();
    private static final int RLIMIT_NOFILE = LinuxH.RLIMIT_NOFILE();

    // Not critical: tests and EchoBench call these on blocking fds, and a critical call that
    // blocks holds off every safepoint (a GC then stops the reactor that would answer: a hang).
    private static final MethodHandle READ =
            withErrno(LinuxH.read$address(), LinuxH.read$descriptor());
    private static final MethodHandle RECV =
            withErrno(LinuxH.recv$address(), LinuxH.recv$descriptor());
    /** {@code fcntl(int, int, ...)} is variadic: the third argument is its first variadic one. */
    private static final MethodHandle FCNTL = Syscalls.withErrnoVariadic(LinuxH.fcntl.address(),
            FunctionDescriptor.of(LinuxH.C_INT, LinuxH.C_INT, LinuxH.C_INT, LinuxH.C_INT), 2);
    private static final MethodHandle PIPE2 =
            withErrno(LinuxH.pipe2$address(), LinuxH.pipe2$descriptor());
    private static final MethodHandle SOCKETPAIR =
            withErrno(LinuxH.socketpair$address(), LinuxH.socketpair$descriptor());
    private static final MethodHandle TIMERFD_CREATE =
            withErrno(LinuxH.timerfd_create$address(), LinuxH.timerfd_create$descriptor());
    private static final MethodHandle TIMERFD_SETTIME =
            withErrno(LinuxH.timerfd_settime$address(), LinuxH.timerfd_settime$descriptor());
    private static final MethodHandle GETRLIMIT =
            withErrno(LinuxH.getrlimit$address(), LinuxH.getrlimit$descriptor());
    private static final MethodHandle SETRLIMIT =
            withErrno(LinuxH.setrlimit$address(), LinuxH.setrlimit$descriptor());
    /** posix_spawn reports failure in its return value, not errno. */
    private static final MethodHandle POSIX_SPAWN =
            plain(LinuxH.posix_spawn$address(), LinuxH.posix_spawn$descriptor());
    private static final MethodHandle WAITPID =
            withErrno(LinuxH.waitpid$address(), LinuxH.waitpid$descriptor());
    private static final MethodHandle GETPID =
            plain(LinuxH.getpid$address(), LinuxH.getpid$descriptor());

    private static final MethodHandle GETSOCKOPT =
            withErrno(LinuxH.getsockopt$address(), LinuxH.getsockopt$descriptor());

    private static final ThreadLocal<TestSyscalls> CURRENT =
            ThreadLocal.withInitial(() -> new TestSyscalls(Arena.ofAuto()));

    private final MemorySegment capture;
    private final MemorySegment scratchLong;
    private final MemorySegment scratchInt2;
    private final MemorySegment scratchTime;

    /**
     * Makes a table whose capture and scratch memory lives in {@code arena}; use it from one
     * thread at a time.
     *
     * @param arena where the per-thread memory is allocated
     */
    public TestSyscalls(Arena arena) {
        this.capture = Syscalls.allocateCapture(arena);
        this.scratchLong = arena.allocate(ValueLayout.JAVA_LONG);
        this.scratchInt2 = arena.allocate(ValueLayout.JAVA_INT, 2);
        this.scratchTime = arena.allocate(itimerspec.layout()); // also holds a struct rlimit
    }

    /** {@return this thread's table} */
    public static TestSyscalls current() {
        return CURRENT.get();
    }

    private int ret(int r) {
        return r < 0 ? -Syscalls.errno(capture) : r;
    }

    /**
     * {@code getsockopt(SOL_SOCKET, SO_LINGER)}: what the kernel holds for {@code fd}.
     *
     * @return the linger seconds if {@code l_onoff} is set, -1 if it is not
     * @throws IllegalStateException if the call fails
     */
    public int linger(int fd) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment l = a.allocate(linger.layout());
            MemorySegment len = a.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, (int) linger.sizeof());
            int r = ret((int) GETSOCKOPT.invokeExact(capture, fd, Syscalls.SOL_SOCKET, Syscalls.SO_LINGER, l, len));
            if (r < 0) {
                throw new IllegalStateException("getsockopt(SO_LINGER) of fd " + fd + ": errno " + -r);
            }
            return linger.l_onoff(l) != 0 ? linger.l_linger(l) : -1;
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    private long ret(long r) {
        return r < 0 ? -Syscalls.errno(capture) : r;
    }

    /**
     * Reads and resets an eventfd's (or a timerfd's) 8-byte counter.
     *
     * @return the counter (at least 1), or {@code -errno} ({@code -EAGAIN} when it is 0 and the fd
     *         is non-blocking)
     */
    public long eventfdRead(int fd) {
        try {
            long r = ret((long) READ.invokeExact(capture, fd, scratchLong, 8L));
            return r < 0 ? r : scratchLong.get(ValueLayout.JAVA_LONG, 0);
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code recv(fd, buf, count, flags)}.
     *
     * @return bytes received, 0 at EOF, or {@code -errno}
     */
    public long recv(int fd, MemorySegment buf, long count, int flags) {
        try {
            return ret((long) RECV.invokeExact(capture, fd, buf, count, flags));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code fcntl(fd, cmd, arg)}.
     *
     * @return the command's result or {@code -errno}
     */
    public int fcntl(int fd, int cmd, int arg) {
        try {
            return ret((int) FCNTL.invokeExact(capture, fd, cmd, arg));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * A close-on-exec duplicate of {@code fd} ({@code F_DUPFD_CLOEXEC}).
     *
     * @return the new fd or {@code -errno}
     */
    public int dup(int fd) {
        return fcntl(fd, F_DUPFD_CLOEXEC, 0);
    }

    /**
     * {@code pipe2(fds, flags | O_CLOEXEC)}.
     *
     * @param fds receives the read end at index 0 and the write end at index 1
     * @return 0 or {@code -errno}
     */
    public int pipe(int[] fds, int flags) {
        try {
            int r = ret((int) PIPE2.invokeExact(capture, scratchInt2, flags | O_CLOEXEC));
            return r == 0 ? readFdPair(fds) : r;
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code socketpair(domain, type | SOCK_CLOEXEC, protocol, fds)}.
     *
     * @param fds receives the two connected ends
     * @return 0 or {@code -errno}
     */
    public int socketpair(int domain, int type, int protocol, int[] fds) {
        try {
            int r = ret((int) SOCKETPAIR.invokeExact(capture, domain, type | SOCK_CLOEXEC, protocol,
                    scratchInt2));
            return r == 0 ? readFdPair(fds) : r;
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /** Copies the two fds {@code pipe2}/{@code socketpair} wrote into scratch memory. @return 0 */
    private int readFdPair(int[] fds) {
        fds[0] = scratchInt2.getAtIndex(ValueLayout.JAVA_INT, 0);
        fds[1] = scratchInt2.getAtIndex(ValueLayout.JAVA_INT, 1);
        return 0;
    }

    /**
     * {@code timerfd_create(clock, flags | TFD_CLOEXEC)}.
     *
     * @return the fd or {@code -errno}
     */
    public int timerfdCreate(int clock, int flags) {
        try {
            return ret((int) TIMERFD_CREATE.invokeExact(capture, clock, flags | TFD_CLOEXEC));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * Arms ({@code initialNanos > 0}) or disarms ({@code 0}) a timerfd, relative to now.
     *
     * @return 0 or {@code -errno}
     */
    public int timerfdSettime(int fd, long initialNanos, long intervalNanos) {
        setTimespec(itimerspec.it_interval(scratchTime), intervalNanos);
        setTimespec(itimerspec.it_value(scratchTime), initialNanos);
        try {
            return ret((int) TIMERFD_SETTIME.invokeExact(capture, fd, 0, scratchTime,
                    MemorySegment.NULL));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    private static void setTimespec(MemorySegment ts, long nanos) {
        timespec.tv_sec(ts, nanos / 1_000_000_000L);
        timespec.tv_nsec(ts, nanos % 1_000_000_000L);
    }

    /**
     * {@code posix_spawn(pid, path, NULL, NULL, argv, envp)}: starts a program that inherits
     * every fd of this process not marked close-on-exec (unlike {@link ProcessBuilder}, which
     * closes them all in the child), which is what a test of close-on-exec needs.
     *
     * @param pidOut receives the child's pid (a C {@code int})
     * @param path the program, a NUL-terminated C string
     * @param argv NULL-terminated array of C strings
     * @param envp NULL-terminated array of C strings
     * @return 0 or {@code -error}
     */
    public int posixSpawn(MemorySegment pidOut, MemorySegment path, MemorySegment argv, MemorySegment envp) {
        try {
            int r = (int) POSIX_SPAWN.invokeExact(pidOut, path, MemorySegment.NULL, MemorySegment.NULL, argv, envp);
            return -r;
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code waitpid(pid, status, 0)}.
     *
     * @param status receives the wait status (a C {@code int})
     * @return the pid or {@code -errno}
     */
    public int waitpid(int pid, MemorySegment status) {
        try {
            return ret((int) WAITPID.invokeExact(capture, pid, status, 0));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /** {@return this process's id} */
    public static int pid() {
        try {
            return (int) GETPID.invokeExact();
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code getrlimit(RLIMIT_NOFILE)}.
     *
     * @param out receives {soft, hard}
     * @return 0 or {@code -errno}
     */
    public int fileLimit(long[] out) {
        MemorySegment lim = scratchTime.asSlice(0, rlimit.layout().byteSize());
        try {
            int r = ret((int) GETRLIMIT.invokeExact(capture, RLIMIT_NOFILE, lim));
            if (r == 0) {
                out[0] = rlimit.rlim_cur(lim);
                out[1] = rlimit.rlim_max(lim);
            }
            return r;
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code setrlimit(RLIMIT_NOFILE, {soft, hard})}.
     *
     * @return 0 or {@code -errno}
     */
    public int setFileLimit(long soft, long hard) {
        MemorySegment lim = scratchTime.asSlice(0, rlimit.layout().byteSize());
        rlimit.rlim_cur(lim, soft);
        rlimit.rlim_max(lim, hard);
        try {
            return ret((int) SETRLIMIT.invokeExact(capture, RLIMIT_NOFILE, lim));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }
}
