package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;

import java.util.PriorityQueue;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * A reactor's timers: a heap by deadline, on the reactor thread only, but for the count of
 * cancels, which any thread may bump ({@link ScheduledTask#cancel()}). The loop passes the nearest
 * deadline to {@code epoll_pwait2} as its timeout, so no timerfd is needed.
 */
final class TimerHeap {
    private static final System.Logger LOG = System.getLogger(TimerHeap.class.getName());
    private static final int PURGE_MIN_CANCELLED = 256;

    private final PriorityQueue<ScheduledTask> heap = new PriorityQueue<>();
    /** Cancels since the last purge, from any thread. */
    private final AtomicInteger cancelledSincePurge = new AtomicInteger();
    private long sequence;

    /** Reactor thread: adds {@code t}, purging cancelled timers first when they are the majority. */
    void add(ScheduledTask t) {
        int cancelled = cancelledSincePurge.get();
        if (cancelled > PURGE_MIN_CANCELLED && cancelled > heap.size() / 2) {
            // Idle timeouts are cancelled far more often than they fire: without a purge, each
            // would stay in the heap until its deadline.
            cancelledSincePurge.set(0);
            heap.removeIf(ScheduledTask::isCancelled);
        }
        t.sequence = sequence++;
        heap.add(t);
    }

    /** Any thread: a timer was cancelled (it may or may not still be in the heap). */
    void cancelled() {
        cancelledSincePurge.incrementAndGet();
    }

    /** {@return timers in the heap, cancelled ones not yet purged included} */
    int size() {
        return heap.size();
    }

    /** {@return nanoseconds until the nearest deadline (0 if due), or -1 with no timer} */
    long nanosUntilNext(long now) {
        ScheduledTask next = heap.peek();
        return next == null ? -1 : Math.max(0, next.deadlineNanos - now);
    }

    /** Reactor thread: runs every timer due by {@code now}, in deadline order. */
    void runDue(long now, ReactorStats stats, int reactorIndex) {
        ScheduledTask t;
        while ((t = heap.peek()) != null && t.deadlineNanos - now <= 0) {
            heap.poll();
            if (t.isCancelled()) {
                continue;
            }
            stats.increment(Counter.TIMERS_FIRED);
            try {
                t.task.run();
            } catch (Throwable e) {
                LOG.log(System.Logger.Level.WARNING, "timer task on reactor " + reactorIndex + " threw", e);
            }
        }
    }

    boolean isEmpty() {
        return heap.isEmpty();
    }

    /** Reactor thread, at shutdown: every pending timer will never run, and says so. */
    void cancelAll() {
        for (ScheduledTask t : heap) {
            t.cancel();
        }
        heap.clear();
    }
}
