package io.quiesce.reactor;

import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The task queue as a race: many producers released together by one latch, a consumer polling
 * the whole time, repeated. Every element arrives exactly once, each producer's elements in the
 * order it offered them, across many chunk boundaries; and the queue never reads empty while a
 * slot is claimed (what the reactor's park check relies on).
 */
class MpscTaskQueueTest {
    private static final int PRODUCERS = 8;
    private static final int PER_PRODUCER = 20_000; // 160k elements: ~156 chunks per round

    /** An element: who offered it and its position in that producer's sequence. */
    record Item(int producer, int seq) {}

    @RepeatedTest(20)
    void manyProducersEveryItemOnceInProducerOrder() throws Exception {
        race(MpscTaskQueue.CHUNK_SIZE);
    }

    /** Two-slot chunks: producers cross a chunk boundary every other offer, so they race to append. */
    @RepeatedTest(10)
    void manyProducersAcrossTinyChunks() throws Exception {
        race(2);
    }

    private static void race(int chunkSize) throws Exception {
        var q = new MpscTaskQueue<Item>(chunkSize);
        var start = new CountDownLatch(1);
        var failure = new AtomicReference<Throwable>();
        List<Thread> producers = new ArrayList<>();
        for (int p = 0; p < PRODUCERS; p++) {
            int id = p;
            producers.add(Thread.ofPlatform().name("producer-" + p).start(() -> {
                try {
                    start.await();
                    for (int i = 0; i < PER_PRODUCER; i++) {
                        q.offer(new Item(id, i));
                    }
                } catch (Throwable t) {
                    failure.compareAndSet(null, t);
                }
            }));
        }
        int[] next = new int[PRODUCERS];
        int total = PRODUCERS * PER_PRODUCER;
        start.countDown();
        consume(() -> {
            int received = 0;
            while (received < total) {
                int sizeBefore = q.size();
                Item it = q.poll();
                if (it == null) {
                    assertEquals(0, sizeBefore, "poll returned null although size() counted an element");
                    Thread.onSpinWait();
                    continue;
                }
                assertEquals(next[it.producer()], it.seq(), "producer " + it.producer() + " out of order");
                next[it.producer()]++;
                received++;
            }
        });
        for (Thread t : producers) {
            t.join();
        }
        assertNull(failure.get());
        assertNull(q.poll(), "more elements than were offered");
        assertTrue(q.isEmpty());
        assertEquals(0, q.size());
        for (int p = 0; p < PRODUCERS; p++) {
            assertEquals(PER_PRODUCER, next[p]);
        }
    }

    /**
     * The park check: whenever {@code isEmpty()} says false, a {@code poll()} on the consumer
     * returns an element (possibly after waiting out a claimed slot), never {@code null}.
     */
    @RepeatedTest(10)
    void notEmptyMeansPollReturnsAnElement() throws Exception {
        var q = new MpscTaskQueue<Integer>();
        var start = new CountDownLatch(1);
        var stop = new AtomicBoolean();
        List<Thread> producers = new ArrayList<>();
        int perProducer = 5_000;
        for (int p = 0; p < 4; p++) {
            producers.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < perProducer && !stop.get(); i++) {
                    q.offer(i);
                }
            }));
        }
        start.countDown();
        try {
            consume(() -> {
                int received = 0;
                while (received < 4 * perProducer) {
                    if (q.isEmpty()) {
                        Thread.onSpinWait();
                        continue;
                    }
                    assertNotNull(q.poll(), "isEmpty() was false, then poll() returned null");
                    received++;
                }
            });
        } finally {
            stop.set(true);
            for (Thread t : producers) {
                t.join();
            }
        }
        assertTrue(q.isEmpty());
    }

    /**
     * Runs the consumer on its own thread, bounded: a broken queue can leave {@code poll()}
     * waiting for a slot nobody will fill, and that must fail the test, not hang the suite.
     */
    private static void consume(Runnable consumer) throws Exception {
        var failure = new AtomicReference<Throwable>();
        Thread t = Thread.ofPlatform().daemon().name("consumer").start(() -> {
            try {
                consumer.run();
            } catch (Throwable e) {
                failure.set(e);
            }
        });
        t.join(Duration.ofSeconds(60));
        assertFalse(t.isAlive(), "the consumer is stuck: an element was lost or a poll() never returned");
        if (failure.get() instanceof AssertionError e) {
            throw e;
        }
        assertNull(failure.get());
    }

    @Test
    void singleThreadFifoAcrossChunksAndEmptyAtEveryBoundary() {
        var q = new MpscTaskQueue<Integer>();
        assertTrue(q.isEmpty());
        assertNull(q.poll());
        int n = 3 * MpscTaskQueue.CHUNK_SIZE + 7;
        int taken = 0;
        for (int round = 0; round < 3; round++) {
            // Drain to empty exactly at a chunk's last slot, then go on: the consumer must step
            // into the next chunk only once something follows.
            for (int i = 0; i < MpscTaskQueue.CHUNK_SIZE; i++) {
                q.offer(taken + i);
            }
            assertEquals(MpscTaskQueue.CHUNK_SIZE, q.size());
            for (int i = 0; i < MpscTaskQueue.CHUNK_SIZE; i++) {
                assertEquals(taken++, q.poll());
            }
            assertNull(q.poll());
            assertTrue(q.isEmpty());
        }
        for (int i = 0; i < n; i++) {
            q.offer(i);
        }
        assertEquals(n, q.size());
        for (int i = 0; i < n; i++) {
            assertEquals(i, q.poll());
        }
        assertNull(q.poll());
        assertThrows(NullPointerException.class, () -> q.offer(null));
    }
}
