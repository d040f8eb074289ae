package io.quiesce.bench;

import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;
import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;

/**
 * The reactor's cross-thread paths, measured from a foreign thread against one reactor:
 * <ul>
 *   <li>{@code executeToRun}: {@code execute(task)} until the task has run, with the reactor idle
 *       (parked: the wakeup costs an eventfd write) or busy (running: the wakeup is elided);</li>
 *   <li>{@code foreignClose}: {@code closeAsync()} until the future completes, i.e. DEL, barrier,
 *       close(fd) (target p99 &le; 50 &micro;s on an idle reactor), waiting with {@code join()}
 *       or by spinning ({@code foreignCloseSpin});</li>
 *   <li>{@code registerAndClose}: eventfd + register + close, end to end.</li>
 * </ul>
 * Sample mode gives percentiles; use {@code -prof gc} for allocation.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ReactorBench {
    @Param({"idle", "busy"})
    public String reactorState;

    private ReactorGroup group;
    private Reactor reactor;
    private volatile boolean spinning;
    private final AtomicLong done = new AtomicLong();

    @Setup(Level.Trial)
    public void setup() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
        reactor = group.reactor(0);
        if (reactorState.equals("busy")) {
            spinning = true;
            reactor.execute(new Runnable() { // keeps the reactor running: it never parks
                @Override public void run() {
                    if (spinning) {
                        reactor.execute(this);
                    }
                }
            });
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        spinning = false;
        group.close();
    }

    @Benchmark
    public long executeToRun() {
        long target = done.get() + 1;
        reactor.execute(done::incrementAndGet);
        long now;
        while ((now = done.get()) < target) {
            Thread.onSpinWait();
        }
        return now;
    }

    /** Per invocation: a fresh registered eventfd to close. */
    @State(Scope.Thread)
    public static class ToClose {
        Handle handle;

        @Setup(Level.Invocation)
        public void open(ReactorBench b) throws Exception {
            int fd = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
            handle = b.reactor.register(fd, Interest.READ, (h, r) -> {});
            var attached = new java.util.concurrent.CountDownLatch(1);
            b.reactor.execute(() -> b.reactor.execute(attached::countDown)); // ADD flushed
            attached.await();
        }
    }

    /** Close, then block in {@code join()}: includes waking the parked caller (futex). */
    @Benchmark
    public void foreignClose(ToClose c) {
        c.handle.closeAsync().join();
    }

    /** The blocking API: {@code close(Duration)} (spins up to 50 µs, then parks). */
    @Benchmark
    public void foreignCloseBlocking(ToClose c) throws Exception {
        c.handle.close(java.time.Duration.ofSeconds(10));
    }

    /** Close, then spin on the future: close requested to fd released, without the caller's wake-up. */
    @Benchmark
    public void foreignCloseSpin(ToClose c) {
        var f = c.handle.closeAsync();
        while (!f.isDone()) {
            Thread.onSpinWait();
        }
    }

    @Benchmark
    public void registerAndClose() {
        int fd = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
        reactor.register(fd, Interest.READ, (h, r) -> {}).closeAsync().join();
    }
}
