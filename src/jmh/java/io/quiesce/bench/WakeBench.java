package io.quiesce.bench;

import org.openjdk.jmh.annotations.*;

import java.util.concurrent.TimeUnit;

/**
 * How one io_uring-transport thread wakes another that is parked in its ring, measured as a
 * ping-pong of {@value #RALLY} round trips (a round trip: A wakes parked B, B wakes parked A):
 * <ul>
 *   <li>{@code ringPingPong}, {@code wake=eventfd}: the waker writes the peer's eventfd, which
 *       the peer's epoll (edge-triggered, never read) reports through the {@code EPOLL_WAIT}
 *       its ring keeps in flight; the woken side re-arms that wait (an SQE in its next enter);</li>
 *   <li>{@code ringPingPong}, {@code wake=msgring}: the waker queues an {@code IORING_OP_MSG_RING}
 *       SQE ({@code CQE_SKIP_SUCCESS}) that rides the enter it parks with, and the kernel posts a
 *       CQE straight into the peer's ring (a {@code DEFER_TASKRUN} ring: as task work of the
 *       peer's thread, run when its enter waits); no eventfd write, no wait to re-arm;</li>
 * </ul>
 * The two ring threads are bare rings built as a reactor builds its own ({@link WakePair}), so
 * the difference is the wake alone. The benchmark thread starts a rally and sleeps until it ends.
 * CPU time and syscalls per round trip are printed at the end of each trial.
 * {@link WakeInterleaved} runs both wakes alternating in one process (ratios on a noisy machine);
 * {@link ReactorWakeBench} the same ping-pong through two reactors (what the loop adds).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@OperationsPerInvocation(WakeBench.RALLY)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class WakeBench {
    /** Round trips per invocation. */
    static final int RALLY = 1000;

    @Param({"eventfd", "msgring"})
    public String wake;

    /** {@code none}: the scheduler places the two threads; {@code same}: both on CPU 0; {@code split}: CPU 0 and 1. */
    @Param({"none"})
    public String pin;

    private WakePair pair;
    private long cpuAtStart;

    @Setup(Level.Trial)
    public void setup() {
        pair = pin.equals("none") ? new WakePair(-1, -1) : new WakePair(0, pin.equals("same") ? 0 : 1);
        pair.msgRing = wake.equals("msgring");
        cpuAtStart = pair.cpuNanos();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        long trips = pair.rallies * (long) RALLY;
        long cpu = pair.cpuNanos() - cpuAtStart;
        pair.close();
        System.out.printf("%n[%s pin=%s] per round trip: CPU %.0f ns (both threads), %s%n", wake, pin,
                cpu / (double) trips, pair.counts(trips));
    }

    /** {@value #RALLY} round trips A → B → A; the benchmark thread sleeps meanwhile. */
    @Benchmark
    public void ringPingPong() {
        pair.rally(RALLY);
    }
}
