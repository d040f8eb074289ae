package io.quiesce.bench;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.sys.linux.LinuxH;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.util.concurrent.TimeUnit;

/**
 * What one downcall costs: the same cheap syscall ({@code close(-1)}, which fails at once with
 * EBADF inside the kernel) linked four ways — with or without errno capture, critical or not —
 * and an eventfd write+read pair through {@link Syscalls}. Run with {@code -prof gc} to see
 * allocation per op (target 0 B/op).
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class SyscallBench {
    private static final Linker LINKER = Linker.nativeLinker();
    private static final Linker.Option ERRNO = Linker.Option.captureCallState("errno");
    private static final Linker.Option CRITICAL = Linker.Option.critical(false);
    private static final MethodHandle CLOSE_PLAIN =
            LINKER.downcallHandle(LinuxH.close$address(), LinuxH.close$descriptor());
    private static final MethodHandle CLOSE_CRITICAL =
            LINKER.downcallHandle(LinuxH.close$address(), LinuxH.close$descriptor(), CRITICAL);
    private static final MethodHandle CLOSE_ERRNO =
            LINKER.downcallHandle(LinuxH.close$address(), LinuxH.close$descriptor(), ERRNO);
    private static final MethodHandle CLOSE_ERRNO_CRITICAL =
            LINKER.downcallHandle(LinuxH.close$address(), LinuxH.close$descriptor(), ERRNO, CRITICAL);
    private static final MethodHandle GETPID_PLAIN =
            LINKER.downcallHandle(LinuxH.getpid$address(), LinuxH.getpid$descriptor());

    private Arena arena;
    private MemorySegment capture;
    private Syscalls sys;
    private TestSyscalls tsys;
    private int eventfd;

    @Setup
    public void setup() {
        arena = Arena.ofConfined();
        capture = arena.allocate(Linker.Option.captureStateLayout());
        sys = new Syscalls(arena);
        tsys = new TestSyscalls(arena);
        eventfd = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
    }

    @TearDown
    public void tearDown() {
        sys.close(eventfd);
        arena.close();
    }

    /** {@code getpid}: a real syscall (glibc stopped caching it in 2.25) that cannot fail. */
    @Benchmark
    public int getpid() throws Throwable {
        return (int) GETPID_PLAIN.invokeExact();
    }

    @Benchmark
    public int closeBadFdPlain() throws Throwable {
        return (int) CLOSE_PLAIN.invokeExact(-1);
    }

    @Benchmark
    public int closeBadFdCritical() throws Throwable {
        return (int) CLOSE_CRITICAL.invokeExact(-1);
    }

    @Benchmark
    public int closeBadFdErrno() throws Throwable {
        return (int) CLOSE_ERRNO.invokeExact(capture, -1);
    }

    @Benchmark
    public int closeBadFdErrnoCritical() throws Throwable {
        return (int) CLOSE_ERRNO_CRITICAL.invokeExact(capture, -1);
    }

    /** Through the syscall layer: errno captured, {@code -EBADF} returned. */
    @Benchmark
    public int closeBadFdSyscalls() {
        return sys.close(-1);
    }

    /** The wakeup path's two syscalls: write 1 to an eventfd, read it back. */
    @Benchmark
    public long eventfdWriteRead() {
        sys.eventfdWrite(eventfd, 1);
        return tsys.eventfdRead(eventfd);
    }
}
