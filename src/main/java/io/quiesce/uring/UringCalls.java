package io.quiesce.uring;

import io.quiesce.sys.linux.LinuxH;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.invoke.VarHandle;

/**
 * The raw io_uring system calls: {@code io_uring_setup}, {@code io_uring_enter} and
 * {@code io_uring_register} through {@code syscall(2)} (glibc has no wrappers for them), and
 * {@code mmap}/{@code munmap} for the rings. A table with no policy, no retry and no logging,
 * like {@link io.quiesce.sys.raw.Syscalls} is for epoll.
 *
 * <p>{@code syscall} is variadic: every argument after the number is passed as a {@code long}
 * (the kernel's syscall entry reads whole registers and narrows them to the declared types),
 * so there is no question of what an {@code int} passed through {@code ...} leaves in the
 * upper half of its register. errno is captured by the linker right after the call
 * ({@code captureCallState("errno")}).
 *
 * <p>{@code io_uring_enter} that waits is not linked {@code critical} (it blocks); the
 * variant used when the caller neither waits nor has a timeout larger than zero is.
 *
 * <p>An instance owns its errno capture segment, so it belongs to one thread.
 */
public final class UringCalls {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final MemoryLayout CAPTURE_LAYOUT = Linker.Option.captureStateLayout();
    private static final VarHandle ERRNO_VALUE =
            CAPTURE_LAYOUT.varHandle(MemoryLayout.PathElement.groupElement("errno"));
    private static final ValueLayout.OfLong L = ValueLayout.JAVA_LONG;

    static final long SYS_IO_URING_SETUP = LinuxH.SYS_io_uring_setup();
    static final long SYS_IO_URING_ENTER = LinuxH.SYS_io_uring_enter();
    static final long SYS_IO_URING_REGISTER = LinuxH.SYS_io_uring_register();

    private static MethodHandle syscall(int args, Linker.Option... extra) {
        var layouts = new MemoryLayout[args + 1];
        java.util.Arrays.fill(layouts, L);
        var options = new Linker.Option[extra.length + 2];
        options[0] = Linker.Option.firstVariadicArg(1);
        options[1] = ERRNO;
        System.arraycopy(extra, 0, options, 2, extra.length);
        return LINKER.downcallHandle(LinuxH.syscall.address(), FunctionDescriptor.of(L, layouts),
                options);
    }

    /** {@code syscall(nr, a, b)}: io_uring_setup(entries, params). */
    private static final MethodHandle SYSCALL2 = syscall(2);
    /** {@code syscall(nr, a, b, c, d)}: io_uring_register(fd, opcode, arg, nr_args). */
    private static final MethodHandle SYSCALL4 = syscall(4);
    /** {@code syscall(nr, a, b, c, d, e, f)}: io_uring_enter(fd, to_submit, min, flags, arg, argsz). */
    private static final MethodHandle SYSCALL6 = syscall(6);
    private static final MethodHandle SYSCALL6_CRITICAL = syscall(6, Linker.Option.critical(false));
    private static final MethodHandle MMAP = LINKER.downcallHandle(LinuxH.mmap$address(),
            LinuxH.mmap$descriptor(), ERRNO);
    private static final MethodHandle MUNMAP = LINKER.downcallHandle(LinuxH.munmap$address(),
            LinuxH.munmap$descriptor(), ERRNO);

    /** {@code getpagesize()}: constant for the process, so asked once. */
    private static final int PAGE_SIZE = pageSizeFromLibc();

    private static int pageSizeFromLibc() {
        var h = LINKER.downcallHandle(LinuxH.getpagesize$address(), LinuxH.getpagesize$descriptor());
        try {
            return (int) h.invokeExact();
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    private final MemorySegment capture;

    /**
     * @param arena where the errno capture segment lives (the owning thread's arena)
     */
    public UringCalls(Arena arena) {
        this.capture = arena.allocate(CAPTURE_LAYOUT);
    }

    private long ret(long r) {
        return r < 0 ? -(int) ERRNO_VALUE.get(capture, 0L) : r;
    }

    private static AssertionError linkFailure(Throwable t) {
        return new AssertionError("downcall failed to link or invoke", t);
    }

    /**
     * {@code io_uring_setup(entries, params)}. The kernel fills {@code params} with the ring
     * sizes, offsets and features. The fd it returns is close-on-exec: the kernel installs it
     * with {@code O_RDWR | O_CLOEXEC} (there is no flag to ask otherwise).
     *
     * @return the ring fd or {@code -errno}
     */
    public int setup(int entries, MemorySegment params) {
        try {
            return (int) ret((long) SYSCALL2.invokeExact(capture, SYS_IO_URING_SETUP,
                    (long) entries, params.address()));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code io_uring_enter(fd, toSubmit, minComplete, flags, arg, argSize)}.
     *
     * <p>Mind the kernel's return value: when it submitted anything it returns the number
     * submitted even if the wait that followed was interrupted ({@code EINTR}) or timed out
     * ({@code ETIME}); those errors come back only from a call that submitted nothing. A
     * caller that waits therefore judges the wait by the completion ring, not by this value.
     *
     * @param blocking false only when the call cannot sleep (no {@code GETEVENTS}, or a zero
     *     timeout); such a call is linked {@code critical}
     * @return the number of SQEs consumed, or {@code -errno}
     */
    public int enter(int fd, int toSubmit, int minComplete, int flags, MemorySegment arg,
                     long argSize, boolean blocking) {
        try {
            long r = blocking
                    ? (long) SYSCALL6.invokeExact(capture, SYS_IO_URING_ENTER, (long) fd,
                            (long) toSubmit, (long) minComplete, (long) flags, arg.address(), argSize)
                    : (long) SYSCALL6_CRITICAL.invokeExact(capture, SYS_IO_URING_ENTER, (long) fd,
                            (long) toSubmit, (long) minComplete, (long) flags, arg.address(), argSize);
            return (int) ret(r);
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code io_uring_register(fd, opcode, arg, nrArgs)}.
     *
     * @return the opcode's result or {@code -errno}
     */
    public int register(int fd, int opcode, MemorySegment arg, int nrArgs) {
        try {
            return (int) ret((long) SYSCALL4.invokeExact(capture, SYS_IO_URING_REGISTER,
                    (long) fd, (long) opcode, arg.address(), (long) nrArgs));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@return the page size ({@code getpagesize()}), the alignment the kernel wants for memory
     * it maps from user space, such as a provided buffer ring}
     */
    public static int pageSize() {
        return PAGE_SIZE;
    }

    /**
     * {@code mmap(NULL, length, PROT_READ|PROT_WRITE, MAP_SHARED|MAP_POPULATE, fd, offset)}:
     * maps one of the ring regions ({@code IORING_OFF_*}).
     *
     * @return the mapping's address, or {@code -errno} (as a negative value)
     */
    public long mmapRing(int fd, long length, long offset) {
        try {
            var p = (MemorySegment) MMAP.invokeExact(capture, MemorySegment.NULL, length,
                    LinuxH.PROT_READ() | LinuxH.PROT_WRITE(),
                    LinuxH.MAP_SHARED() | LinuxH.MAP_POPULATE(), fd, offset);
            // MAP_FAILED is (void *) -1; errno is only meaningful then.
            return p.address() == -1L ? -(int) ERRNO_VALUE.get(capture, 0L) : p.address();
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }

    /**
     * {@code munmap(address, length)}.
     *
     * @return 0 or {@code -errno}
     */
    public int munmap(long address, long length) {
        try {
            return (int) ret((int) MUNMAP.invokeExact(capture, MemorySegment.ofAddress(address),
                    length));
        } catch (Throwable t) {
            throw linkFailure(t);
        }
    }
}
