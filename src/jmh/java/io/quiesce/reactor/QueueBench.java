package io.quiesce.reactor;

import org.jctools.queues.MpscUnboundedXaddArrayQueue;
import org.openjdk.jmh.annotations.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Phaser;
import java.util.concurrent.TimeUnit;

/**
 * The task queue against the one it replaced (JCTools' {@code MpscUnboundedXaddArrayQueue}, chunk
 * 1024 as the reactor had it), many producers and one consumer, bounded: one operation is a round
 * in which each of {@code producers} threads offers {@value #PER_PRODUCER} elements while the
 * benchmark thread, the consumer, polls them all. The time per round over
 * {@code producers * PER_PRODUCER} is the cost of one element through the queue under contention;
 * the queue never holds more than one round. In the same package as the queue (it is not public).
 * The JCTools fork is allowed {@code sun.misc.Unsafe}, which JCTools needs; Quiesce does not.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--sun-misc-unsafe-memory-access=allow")
public class QueueBench {
    static final int PER_PRODUCER = 20_000;

    @Param({"quiesce", "jctools"})
    public String queue;

    @Param({"2", "4"})
    public int producers;

    /** The two queues behind one face; each fork uses one, so the calls stay monomorphic. */
    interface TaskQueue {
        void offer(Runnable r);

        Runnable poll();
    }

    private static final Runnable TASK = () -> {};

    private TaskQueue q;
    private Phaser rounds;
    private volatile boolean stop;
    private final List<Thread> threads = new ArrayList<>();

    @Setup(Level.Trial)
    public void setup() {
        q = switch (queue) {
            case "quiesce" -> new TaskQueue() {
                final MpscTaskQueue<Runnable> inner = new MpscTaskQueue<>();
                @Override public void offer(Runnable r) { inner.offer(r); }
                @Override public Runnable poll() { return inner.poll(); }
            };
            case "jctools" -> new TaskQueue() {
                final MpscUnboundedXaddArrayQueue<Runnable> inner = new MpscUnboundedXaddArrayQueue<>(1024);
                @Override public void offer(Runnable r) { inner.offer(r); }
                @Override public Runnable poll() { return inner.poll(); }
            };
            default -> throw new IllegalArgumentException(queue);
        };
        rounds = new Phaser(producers + 1);
        for (int p = 0; p < producers; p++) {
            threads.add(Thread.ofPlatform().daemon().name("producer-" + p).start(() -> {
                while (true) {
                    rounds.arriveAndAwaitAdvance(); // the round starts
                    if (stop) {
                        rounds.arriveAndDeregister();
                        return;
                    }
                    for (int i = 0; i < PER_PRODUCER; i++) {
                        q.offer(TASK);
                    }
                }
            }));
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws InterruptedException {
        stop = true;
        rounds.arriveAndDeregister();
        for (Thread t : threads) {
            t.join();
        }
    }

    /**
     * One thread, no contention: {@value #BATCH} offers then {@value #BATCH} polls per operation.
     * The instruction path of the two queues, free of the scheduling noise a shared machine puts
     * into {@link #round}.
     */
    @State(Scope.Thread)
    public static class Solo {
        TaskQueue q;

        @Setup(Level.Trial)
        public void setup(QueueBench b) {
            q = b.q;
        }
    }

    static final int BATCH = 1_000;

    @Benchmark
    public int sameThread(Solo solo) {
        TaskQueue q = solo.q;
        for (int i = 0; i < BATCH; i++) {
            q.offer(TASK);
        }
        int taken = 0;
        while (q.poll() != null) {
            taken++;
        }
        return taken;
    }

    /** One round: release the producers, take every element they offer. */
    @Benchmark
    public int round() {
        rounds.arriveAndAwaitAdvance();
        int total = producers * PER_PRODUCER;
        int taken = 0;
        while (taken < total) {
            if (q.poll() != null) {
                taken++;
            } else {
                Thread.onSpinWait();
            }
        }
        return taken;
    }
}
