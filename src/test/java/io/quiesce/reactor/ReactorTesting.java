package io.quiesce.reactor;

import io.quiesce.sys.raw.Syscalls;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Helpers for tests that drive a reactor from the test thread. */
final class ReactorTesting {
    private ReactorTesting() {}

    /**
     * Runs {@code action} on the reactor and waits until the reactor has finished the loop
     * iteration it ran in (interest changes flushed, closes the epoch allows released): the
     * latch is counted down by a task queued from the reactor, which runs one iteration later.
     */
    static void onReactor(Reactor r, Runnable action) {
        var done = new CountDownLatch(1);
        Throwable[] failure = new Throwable[1];
        r.execute(() -> {
            try {
                action.run();
            } catch (Throwable t) {
                failure[0] = t;
            } finally {
                r.execute(done::countDown);
            }
        });
        await(done);
        if (failure[0] != null) {
            throw new AssertionError("failed on the reactor thread", failure[0]);
        }
    }

    /** Makes the reactor go round its loop at least {@code times} times, each with an epoll_wait. */
    static void roundTrips(Reactor r, int times) {
        for (int i = 0; i < times; i++) {
            onReactor(r, () -> {});
        }
    }

    static void await(CountDownLatch latch) {
        try {
            assertTrue(latch.await(20, TimeUnit.SECONDS), "timed out waiting (a lost wakeup?)");
        } catch (InterruptedException e) {
            throw new AssertionError(e);
        }
    }

    /** Waits (bounded, generously) until {@code condition} holds; progress, not speed. */
    static void eventually(String what, BooleanSupplier condition) {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("never happened: " + what);
            }
            Thread.onSpinWait();
            Thread.yield();
        }
    }

    static int eventfd() {
        int fd = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
        assertTrue(fd >= 0, "eventfd");
        return fd;
    }
}
