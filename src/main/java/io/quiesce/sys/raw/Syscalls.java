package io.quiesce.sys.raw;

import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.cpu_set_t;
import io.quiesce.sys.linux.epoll_event;
import io.quiesce.sys.linux.iovec;
import io.quiesce.sys.linux.linger;
import io.quiesce.sys.linux.msghdr;
import io.quiesce.sys.linux.timespec;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The raw system calls Quiesce makes: a table of downcalls, with no policy, no retry and no
 * logging (STYLE habit 1).
 *
 * <p>Every downcall is built from the jextract-generated address and descriptor with
 * {@code Linker.Option.captureCallState("errno")}: errno is read from the capture segment the
 * JVM fills right after the call, never through {@code __errno_location} later (by then the
 * JVM may have made calls of its own on this thread). Calls that can never block on the fds
 * Quiesce creates (all non-blocking) are also linked {@code critical}; {@code epoll_wait}
 * with a timeout, {@code close} (which can linger) and the cold setup calls are not.
 *
 * <p>Every method returns what the kernel returns, with failure as {@code -errno}: callers
 * treat {@code -EAGAIN} and {@code -EINTR} as values and hand anything they cannot handle to
 * {@link io.quiesce.sys.Errno#check}. The one policy here is that every fd-creating call adds its
 * close-on-exec flag, so no fd Quiesce makes is inherited across {@code exec}
 * ({@code epoll-semantics-ofd-dup-fork.txt}).
 *
 * <p>An instance holds the errno capture segment and small scratch structures, so it belongs
 * to one thread: a reactor makes one for its own thread; other code uses {@link #current()}.
 */
public final class Syscalls {
    // ---- constants (from the generated bindings) ----
    public static final int EPOLLIN = LinuxH.EPOLLIN();
    public static final int EPOLLPRI = LinuxH.EPOLLPRI();
    public static final int EPOLLOUT = LinuxH.EPOLLOUT();
    public static final int EPOLLERR = LinuxH.EPOLLERR();
    public static final int EPOLLHUP = LinuxH.EPOLLHUP();
    public static final int EPOLLRDHUP = LinuxH.EPOLLRDHUP();
    public static final int EPOLLET = LinuxH.EPOLLET();
    public static final int EPOLLONESHOT = LinuxH.EPOLLONESHOT();
    public static final int EPOLL_CTL_ADD = LinuxH.EPOLL_CTL_ADD();
    public static final int EPOLL_CTL_MOD = LinuxH.EPOLL_CTL_MOD();
    public static final int EPOLL_CTL_DEL = LinuxH.EPOLL_CTL_DEL();
    public static final int EFD_NONBLOCK = LinuxH.EFD_NONBLOCK();
    private static final int EFD_CLOEXEC = LinuxH.EFD_CLOEXEC();
    public static final int AF_INET = LinuxH.AF_INET();
    public static final int AF_INET6 = LinuxH.AF_INET6();
    public static final int SOCK_STREAM = LinuxH.SOCK_STREAM();
    public static final int SOCK_NONBLOCK = LinuxH.SOCK_NONBLOCK();
    private static final int SOCK_CLOEXEC = LinuxH.SOCK_CLOEXEC();
    public static final int SOL_SOCKET = LinuxH.SOL_SOCKET();
    public static final int SO_REUSEADDR = LinuxH.SO_REUSEADDR();
    public static final int SO_REUSEPORT = LinuxH.SO_REUSEPORT();
    public static final int SO_ERROR = LinuxH.SO_ERROR();
    public static final int SO_KEEPALIVE = LinuxH.SO_KEEPALIVE();
    public static final int SO_RCVBUF = LinuxH.SO_RCVBUF();
    public static final int SO_SNDBUF = LinuxH.SO_SNDBUF();
    public static final int SO_LINGER = LinuxH.SO_LINGER();
    public static final int IPPROTO_TCP = LinuxH.IPPROTO_TCP();
    public static final int TCP_NODELAY = LinuxH.TCP_NODELAY();
    public static final int SHUT_WR = LinuxH.SHUT_WR();
    public static final int MSG_NOSIGNAL = LinuxH.MSG_NOSIGNAL();
    public static final int SOMAXCONN = LinuxH.SOMAXCONN();

    /** Size of one {@code struct epoll_event}: 12 bytes, packed on x86_64. */
    public static final long EPOLL_EVENT_SIZE = epoll_event.layout().byteSize();
    /** Offset of {@code epoll_event.data} (a {@code u64}, unaligned at 4 on x86_64). */
    public static final long EPOLL_EVENT_DATA_OFFSET =
            epoll_event.layout().byteOffset(MemoryLayout.PathElement.groupElement("data"));
    /** Size of one {@code struct iovec} (base pointer, length: 16 bytes on x86_64). */
    public static final long IOVEC_SIZE = iovec.layout().byteSize();
    /** Offset of {@code iovec.iov_base}. */
    public static final long IOVEC_BASE_OFFSET = iovec.iov_base$offset();
    /** Offset of {@code iovec.iov_len}. */
    public static final long IOVEC_LEN_OFFSET = iovec.iov_len$offset();
    /** Unaligned {@code long}, the layout of {@code epoll_event.data.u64}. */
    public static final ValueLayout.OfLong U64_UNALIGNED = ValueLayout.JAVA_LONG_UNALIGNED;

    // ---- downcall handles ----
    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final Linker.Option CRITICAL = Linker.Option.critical(false);
    private static final MemoryLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_VALUE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));

    /** A downcall with errno capture; the handle takes the capture segment first. */
    static MethodHandle withErrno(MemorySegment address, FunctionDescriptor fd) {
        return LINKER.downcallHandle(address, fd, ERRNO);
    }

    /** Same, for a call that never blocks on Quiesce's non-blocking fds. */
    static MethodHandle withErrnoCritical(MemorySegment address, FunctionDescriptor fd) {
        return LINKER.downcallHandle(address, fd, ERRNO, CRITICAL);
    }

    /**
     * Same as {@link #withErrno} for a variadic C function; {@code firstVariadicArg} is the index
     * of its first variadic parameter, which the ABI may pass differently from a fixed one.
     */
    static MethodHandle withErrnoVariadic(MemorySegment address, FunctionDescriptor fd, int firstVariadicArg) {
        return LINKER.downcallHandle(address, fd, Linker.Option.firstVariadicArg(firstVariadicArg), ERRNO);
    }

    /**
     * Under {@code _GNU_SOURCE} glibc declares the {@code struct sockaddr *} parameters of
     * {@code bind}, {@code connect}, {@code accept4}, {@code getsockname} and
     * {@code getpeername} as a {@code transparent_union} of pointers, which jextract renders as
     * a by-value union. At the ABI level a transparent union is passed as its first member, a
     * pointer, so the generated descriptor is used with those unions replaced by
     * {@code C_POINTER}.
     */
    static FunctionDescriptor unionArgsAsPointers(FunctionDescriptor fd) {
        var args = fd.argumentLayouts().stream()
                .map(l -> l instanceof java.lang.foreign.UnionLayout ? LinuxH.C_POINTER : l)
                .toArray(MemoryLayout[]::new);
        return FunctionDescriptor.of(fd.returnLayout().orElseThrow(), args);
    }

    /** A downcall without errno capture, for calls that cannot fail or report no errno. */
    static MethodHandle plain(MemorySegment address, FunctionDescriptor fd) {
        return LINKER.downcallHandle(address, fd);
    }

    private static final MethodHandle EPOLL_CREATE1 =
            withErrno(LinuxH.epoll_create1$address(), LinuxH.epoll_create1$descriptor());
    private static final MethodHandle EPOLL_CTL =
            withErrnoCritical(LinuxH.epoll_ctl$address(), LinuxH.epoll_ctl$descriptor());
    private static final MethodHandle EPOLL_WAIT =
            withErrno(LinuxH.epoll_wait$address(), LinuxH.epoll_wait$descriptor());
    /** {@code epoll_wait} with timeout 0 never blocks, so it may be critical. */
    private static final MethodHandle EPOLL_WAIT_NOW =
            withErrnoCritical(LinuxH.epoll_wait$address(), LinuxH.epoll_wait$descriptor());
    private static final MethodHandle EPOLL_PWAIT2 =
            withErrno(LinuxH.epoll_pwait2$address(), LinuxH.epoll_pwait2$descriptor());
    private static final MethodHandle EVENTFD =
            withErrno(LinuxH.eventfd$address(), LinuxH.eventfd$descriptor());
    private static final MethodHandle READ =
            withErrnoCritical(LinuxH.read$address(), LinuxH.read$descriptor());
    private static final MethodHandle WRITE =
            withErrnoCritical(LinuxH.write$address(), LinuxH.write$descriptor());
    private static final MethodHandle SEND =
            withErrnoCritical(LinuxH.send$address(), LinuxH.send$descriptor());
    private static final MethodHandle SENDMSG =
            withErrnoCritical(LinuxH.sendmsg$address(), LinuxH.sendmsg$descriptor());
    /** Not critical: {@code close} can block (SO_LINGER, last reference to a file). */
    private static final MethodHandle CLOSE =
            withErrno(LinuxH.close$address(), LinuxH.close$descriptor());
    private static final MethodHandle SOCKET =
            withErrno(LinuxH.socket$address(), LinuxH.socket$descriptor());
    private static final MethodHandle BIND =
            withErrno(LinuxH.bind$address(), unionArgsAsPointers(LinuxH.bind$descriptor()));
    private static final MethodHandle LISTEN =
            withErrno(LinuxH.listen$address(), LinuxH.listen$descriptor());
    private static final MethodHandle ACCEPT4 =
            withErrnoCritical(LinuxH.accept4$address(), unionArgsAsPointers(LinuxH.accept4$descriptor()));
    private static final MethodHandle CONNECT =
            withErrno(LinuxH.connect$address(), unionArgsAsPointers(LinuxH.connect$descriptor()));
    private static final MethodHandle SETSOCKOPT =
            withErrno(LinuxH.setsockopt$address(), LinuxH.setsockopt$descriptor());
    private static final MethodHandle GETSOCKOPT =
            withErrno(LinuxH.getsockopt$address(), LinuxH.getsockopt$descriptor());
    private static final MethodHandle GETSOCKNAME =
            withErrno(LinuxH.getsockname$address(), unionArgsAsPointers(LinuxH.getsockname$descriptor()));
    private static final MethodHandle GETPEERNAME =
            withErrno(LinuxH.getpeername$address(), unionArgsAsPointers(LinuxH.getpeername$descriptor()));
    private static final MethodHandle SHUTDOWN =
            withErrno(LinuxH.shutdown$address(), LinuxH.shutdown$descriptor());
    private static final MethodHandle SCHED_SETAFFINITY =
            withErrno(LinuxH.sched_setaffinity$address(), LinuxH.sched_setaffinity$descriptor());

    private static final ThreadLocal<Syscalls> CURRENT =
            ThreadLocal.withInitial(() -> new Syscalls(Arena.ofAuto()));

    // ---- per-thread memory ----
    private final MemorySegment capture;
    private final MemorySegment scratchEvent;
    private final MemorySegment scratchLong;
    private final MemorySegment scratchInt2;
    private final MemorySegment scratchTime;
    private final MemorySegment scratchCpuSet;
    private final MemorySegment scratchMsg;
    private final MemorySegment scratchLinger;

    /**
     * Makes a syscall table whose capture and scratch memory lives in {@code arena}; use it
     * from one thread at a time.
     *
     * @param arena where the per-thread memory is allocated (a reactor's confined arena)
     */
    public Syscalls(Arena arena) {
        this.capture = allocateCapture(arena);
        this.scratchEvent = arena.allocate(epoll_event.layout());
        this.scratchLong = arena.allocate(ValueLayout.JAVA_LONG);
        this.scratchInt2 = arena.allocate(ValueLayout.JAVA_INT, 2);
        this.scratchTime = arena.allocate(timespec.layout());
        this.scratchCpuSet = arena.allocate(cpu_set_t.layout());
        this.scratchMsg = arena.allocate(msghdr.layout()); // zeroed: no name, no control data
        this.scratchLinger = arena.allocate(linger.layout());
    }

    /** {@return this thread's table, for calls made off a reactor thread} */
    public static Syscalls current() {
        return CURRENT.get();
    }

    private int errno() {
        return errno(capture);
    }

    /** {@return a segment the JVM fills with errno after a call linked by {@link #withErrno}} */
    static MemorySegment allocateCapture(Arena arena) {
        return arena.allocate(CAPTURE_LAYOUT);
    }

    /** {@return the errno a call left in {@code capture}} */
    static int errno(MemorySegment capture) {
        return (int) ERRNO_VALUE.get(capture, 0L);
    }

    private int ret(int r) {
        return r < 0 ? -errno() : r;
    }

    private long ret(long r) {
        return r < 0 ? -errno() : r;
    }

    static AssertionError linkFailure(Throwable t) {
        return new AssertionError("downcall failed to link or invoke", t);
    }

    // ---- epoll ----

    /**
     * {@code epoll_create1(EPOLL_CLOEXEC)}.
     *
     * @return the epoll fd or {@code -errno}
     */
    public int epollCreate() {
        try {
            return ret((int) EPOLL_CREATE1.invokeExact(capture, LinuxH.EPOLL_CLOEXEC()));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code epoll_ctl(epfd, op, fd, {events, data.u64 = token})}.
     *
     * @return 0 or {@code -errno}
     */
    public int epollCtl(int epfd, int op, int fd, int events, long token) {
        epoll_event.events(scratchEvent, events);
        scratchEvent.set(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET, token);
        try {
            return ret((int) EPOLL_CTL.invokeExact(capture, epfd, op, fd, scratchEvent));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code epoll_wait} with a timeout in milliseconds ({@code -1} forever, {@code 0} poll).
     *
     * @param events an array of {@code maxEvents} packed {@code epoll_event}s
     * @return the number of ready events or {@code -errno}
     */
    public int epollWait(int epfd, MemorySegment events, int maxEvents, int timeoutMillis) {
        try {
            return ret(timeoutMillis == 0
                    ? (int) EPOLL_WAIT_NOW.invokeExact(capture, epfd, events, maxEvents, 0)
                    : (int) EPOLL_WAIT.invokeExact(capture, epfd, events, maxEvents, timeoutMillis));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code epoll_pwait2} with a timeout in nanoseconds (negative: forever) and no signal mask
     * change. Linux 5.11+; {@code -ENOSYS} on older kernels.
     *
     * @return the number of ready events or {@code -errno}
     */
    public int epollWaitNanos(int epfd, MemorySegment events, int maxEvents, long timeoutNanos) {
        MemorySegment timeout = MemorySegment.NULL;
        if (timeoutNanos >= 0) {
            timeout = scratchTime;
            timespec.tv_sec(timeout, timeoutNanos / 1_000_000_000L);
            timespec.tv_nsec(timeout, timeoutNanos % 1_000_000_000L);
        }
        try {
            return ret((int) EPOLL_PWAIT2.invokeExact(capture, epfd, events, maxEvents, timeout,
                    MemorySegment.NULL));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    // ---- eventfd ----

    /**
     * {@code eventfd(initval, flags | EFD_CLOEXEC)}.
     *
     * @return the fd or {@code -errno}
     */
    public int eventfd(int initialValue, int flags) {
        try {
            return ret((int) EVENTFD.invokeExact(capture, initialValue, flags | EFD_CLOEXEC));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * Adds {@code value} to an eventfd's counter.
     *
     * @return 8 or {@code -errno}
     */
    public long eventfdWrite(int fd, long value) {
        scratchLong.set(ValueLayout.JAVA_LONG, 0, value);
        return write(fd, scratchLong, 8);
    }

    // ---- plain I/O ----

    /**
     * {@code read(fd, buf, count)}.
     *
     * @return bytes read, 0 at EOF, or {@code -errno}
     */
    public long read(int fd, MemorySegment buf, long count) {
        try {
            return ret((long) READ.invokeExact(capture, fd, buf, count));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code write(fd, buf, count)}. On a socket prefer {@link #send} with {@code MSG_NOSIGNAL}.
     *
     * @return bytes written or {@code -errno}
     */
    public long write(int fd, MemorySegment buf, long count) {
        try {
            return ret((long) WRITE.invokeExact(capture, fd, buf, count));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code send(fd, buf, count, flags)}.
     *
     * @return bytes sent or {@code -errno}
     */
    public long send(int fd, MemorySegment buf, long count, int flags) {
        try {
            return ret((long) SEND.invokeExact(capture, fd, buf, count, flags));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * Gathering send: {@code sendmsg(fd, {iov, iovCount}, flags)}. Unlike {@code writev} it
     * takes {@code MSG_NOSIGNAL}, so a write to a peer that is gone returns {@code -EPIPE}
     * instead of raising SIGPIPE.
     *
     * @param iov an array of {@code iovCount} {@code struct iovec}
     * @return bytes sent or {@code -errno}
     */
    public long sendmsg(int fd, MemorySegment iov, int iovCount, int flags) {
        msghdr.msg_iov(scratchMsg, iov);
        msghdr.msg_iovlen(scratchMsg, iovCount);
        try {
            return ret((long) SENDMSG.invokeExact(capture, fd, scratchMsg, flags));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code close(fd)}.
     *
     * @return 0 or {@code -errno}
     */
    public int close(int fd) {
        try {
            return ret((int) CLOSE.invokeExact(capture, fd));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    // ---- sockets ----

    /**
     * {@code socket(domain, type | SOCK_CLOEXEC, protocol)}.
     *
     * @return the fd or {@code -errno}
     */
    public int socket(int domain, int type, int protocol) {
        try {
            return ret((int) SOCKET.invokeExact(capture, domain, type | SOCK_CLOEXEC, protocol));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code bind(fd, addr, len)}.
     *
     * @return 0 or {@code -errno}
     */
    public int bind(int fd, MemorySegment addr, int addrLen) {
        try {
            return ret((int) BIND.invokeExact(capture, fd, addr, addrLen));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code listen(fd, backlog)}.
     *
     * @return 0 or {@code -errno}
     */
    public int listen(int fd, int backlog) {
        try {
            return ret((int) LISTEN.invokeExact(capture, fd, backlog));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code accept4(fd, addr, addrLen, flags | SOCK_CLOEXEC)}.
     *
     * @param addr receives the peer address, or {@code NULL}
     * @param addrLen in: size of {@code addr}; out: its used length; or {@code NULL}
     * @return the new fd or {@code -errno}
     */
    public int accept(int fd, MemorySegment addr, MemorySegment addrLen, int flags) {
        try {
            return ret((int) ACCEPT4.invokeExact(capture, fd, addr, addrLen, flags | SOCK_CLOEXEC));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code connect(fd, addr, len)}.
     *
     * @return 0 or {@code -errno} ({@code -EINPROGRESS} when non-blocking)
     */
    public int connect(int fd, MemorySegment addr, int addrLen) {
        try {
            return ret((int) CONNECT.invokeExact(capture, fd, addr, addrLen));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code setsockopt} of an {@code int} option.
     *
     * @return 0 or {@code -errno}
     */
    public int setsockopt(int fd, int level, int option, int value) {
        scratchInt2.set(ValueLayout.JAVA_INT, 0, value);
        return setsockopt(fd, level, option, scratchInt2, 4);
    }

    /**
     * {@code setsockopt(fd, level, option, value, len)}.
     *
     * @return 0 or {@code -errno}
     */
    public int setsockopt(int fd, int level, int option, MemorySegment value, int len) {
        try {
            return ret((int) SETSOCKOPT.invokeExact(capture, fd, level, option, value, len));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code setsockopt(SOL_SOCKET, SO_LINGER, {on, seconds})}.
     *
     * @return 0 or {@code -errno}
     */
    public int setLinger(int fd, boolean on, int seconds) {
        linger.l_onoff(scratchLinger, on ? 1 : 0);
        linger.l_linger(scratchLinger, seconds);
        return setsockopt(fd, SOL_SOCKET, SO_LINGER, scratchLinger, (int) linger.sizeof());
    }

    /**
     * {@code getsockopt} of an {@code int} option.
     *
     * @return the option's value (never negative for the options Quiesce reads: SO_ERROR holds a
     *         positive errno) or {@code -errno} if the call failed
     */
    public int getsockoptInt(int fd, int level, int option) {
        scratchInt2.set(ValueLayout.JAVA_INT, 4, 4);
        try {
            int r = ret((int) GETSOCKOPT.invokeExact(capture, fd, level, option, scratchInt2,
                    scratchInt2.asSlice(4)));
            return r < 0 ? r : scratchInt2.get(ValueLayout.JAVA_INT, 0);
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code getsockname(fd, addr, addrLen)}.
     *
     * @param addrLen in: size of {@code addr}; out: its used length
     * @return 0 or {@code -errno}
     */
    public int getsockname(int fd, MemorySegment addr, MemorySegment addrLen) {
        try {
            return ret((int) GETSOCKNAME.invokeExact(capture, fd, addr, addrLen));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code getpeername(fd, addr, addrLen)}.
     *
     * @return 0 or {@code -errno}
     */
    public int getpeername(int fd, MemorySegment addr, MemorySegment addrLen) {
        try {
            return ret((int) GETPEERNAME.invokeExact(capture, fd, addr, addrLen));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code shutdown(fd, how)}.
     *
     * @return 0 or {@code -errno}
     */
    public int shutdown(int fd, int how) {
        try {
            return ret((int) SHUTDOWN.invokeExact(capture, fd, how));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    // ---- timers, scheduling, limits ----

    /**
     * Pins the calling thread to one CPU.
     *
     * @return 0 or {@code -errno}
     */
    public int pinCurrentThread(int cpu) {
        scratchCpuSet.fill((byte) 0);
        long word = scratchCpuSet.getAtIndex(ValueLayout.JAVA_LONG, cpu / 64);
        scratchCpuSet.setAtIndex(ValueLayout.JAVA_LONG, cpu / 64, word | (1L << (cpu % 64)));
        try {
            return ret((int) SCHED_SETAFFINITY.invokeExact(capture, 0, scratchCpuSet.byteSize(),
                    scratchCpuSet));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

}
