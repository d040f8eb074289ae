package io.quiesce.reactor;

import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.jetbrains.lincheck.datastructures.IntGen;
import org.junit.jupiter.api.Test;

import java.util.ArrayDeque;

/**
 * The task queue checked by Lincheck: its model checker explores interleavings of producers and
 * the one consumer (a bounded search, not the schedules a race test happens to hit), then stress
 * mode runs them on real threads. Every result must be explained by some sequential order of the
 * same operations on a plain FIFO ({@link Fifo}). Chunks are two slots long so that scenarios of a
 * few operations cross chunk boundaries: appending a chunk, the consumer stepping into it, and a
 * producer whose hint has moved past its own chunk.
 *
 * <p>{@code poll}, {@code isEmpty} and {@code size} are the consumer's (one non-parallel group,
 * as on the reactor thread). A {@code poll} that finds a claimed but unfilled slot waits for it;
 * the model checker sees that wait as a spin loop and lets the producer go on.
 */
@Param(name = "value", gen = IntGen.class, conf = "1:9")
public class MpscTaskQueueModelTest {
    private final MpscTaskQueue<Integer> queue = new MpscTaskQueue<>(2);

    @Operation
    public void offer(@Param(name = "value") int value) {
        queue.offer(value);
    }

    @Operation(nonParallelGroup = "consumer")
    public Integer poll() {
        return queue.poll();
    }

    @Operation(nonParallelGroup = "consumer")
    public boolean isEmpty() {
        return queue.isEmpty();
    }

    @Operation(nonParallelGroup = "consumer")
    public int size() {
        return queue.size();
    }

    /** The sequential specification: what a queue with one thread at a time must answer. */
    public static class Fifo {
        private final ArrayDeque<Integer> items = new ArrayDeque<>();

        public void offer(int value) {
            items.addLast(value);
        }

        public Integer poll() {
            return items.pollFirst();
        }

        public boolean isEmpty() {
            return items.isEmpty();
        }

        public int size() {
            return items.size();
        }
    }

    @Test
    void modelChecking() {
        new ModelCheckingOptions()
                .threads(3)
                .actorsPerThread(3)
                .actorsBefore(2)
                .actorsAfter(2)
                .iterations(8)
                .invocationsPerIteration(400)
                .sequentialSpecification(Fifo.class)
                .check(MpscTaskQueueModelTest.class);
    }

    @Test
    void stress() {
        new StressOptions()
                .threads(3)
                .actorsPerThread(4)
                .actorsBefore(2)
                .actorsAfter(2)
                .iterations(5)
                .invocationsPerIteration(400)
                .sequentialSpecification(Fifo.class)
                .check(MpscTaskQueueModelTest.class);
    }
}
