package io.quiesce.bench;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * The {@link WakeBench} ping-pong through two reactors of a group on the io_uring transport:
 * {@code execute} from a task on one reactor to the other, {@value WakeBench#RALLY} round trips
 * per invocation, each hand-off waking a parked reactor with its eventfd. Beside
 * {@code WakeBench.ringPingPong} ({@code wake=eventfd}) it shows what the loop adds around the wake.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@OperationsPerInvocation(WakeBench.RALLY)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class ReactorWakeBench {
    /** Two reactors of one group on the io_uring transport. */
    @State(Scope.Benchmark)
    public static class Reactors {
        ReactorGroup group;
        Reactor ra;
        Reactor rb;
        final AtomicLong done = new AtomicLong();
        long rallies;
        volatile Thread waiter;

        @Setup(Level.Trial)
        public void setup() throws Exception {
            group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withIo(ReactorGroup.Io.URING));
            ra = group.reactor(0);
            rb = group.reactor(1);
            if (ra.io() != ReactorGroup.Io.URING || rb.io() != ReactorGroup.Io.URING) {
                throw new IllegalStateException("the io_uring transport is unavailable here");
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            double trips = rallies * (double) WakeBench.RALLY;
            long sent = ra.stats().wakeupsSent() + rb.stats().wakeupsSent();
            long elided = ra.stats().wakeupsElided() + rb.stats().wakeupsElided();
            long enters = ra.stats().get(ReactorStats.Counter.URING_ENTERS) + rb.stats().get(ReactorStats.Counter.URING_ENTERS);
            group.close();
            System.out.printf("%n[reactors] per round trip: eventfd wakeups sent %.3f, elided %.3f, io_uring_enter %.3f%n",
                    sent / trips, elided / trips, enters / trips);
        }

        void pass(int halfTrips, boolean onA) {
            if (halfTrips == 0) {
                done.incrementAndGet();
                LockSupport.unpark(waiter);
                return;
            }
            (onA ? rb : ra).execute(() -> pass(halfTrips - 1, !onA));
        }
    }

    /** {@value WakeBench#RALLY} round trips between two reactors' {@code execute}; the benchmark thread sleeps. */
    @Benchmark
    public void reactorPingPong(Reactors r) {
        long target = r.done.get() + 1;
        r.waiter = Thread.currentThread();
        r.rallies++;
        r.ra.execute(() -> r.pass(2 * WakeBench.RALLY - 1, true));
        while (r.done.get() < target) {
            LockSupport.park(r);
        }
    }
}
