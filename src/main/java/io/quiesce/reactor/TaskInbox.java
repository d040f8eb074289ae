package io.quiesce.reactor;

import io.quiesce.sys.raw.Syscalls;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The one way into a reactor from another thread (STYLE habit 5): an MPSC task queue, the
 * parked/awake flag that lets a producer skip the wakeup while the reactor is running, and the
 * door that shutdown closes.
 *
 * <p>A wakeup is one write to the reactor's eventfd, which is registered edge-triggered and never
 * read: every write raises a new edge, and a 64-bit counter cannot fill. It is sent only when the
 * reactor is (about to be) blocked in {@code epoll_wait}; the reactor publishes PARKED and then
 * looks at the queue once more, so a task offered as it parks is never slept on.
 *
 * <p>The door: {@link #producers} counts threads inside {@link #offer}, with the sign bit set once
 * the door is shut. After {@link #shutDoor()} returns no offer is in flight, so no task can be
 * lost in the queue and no late wakeup can write into the eventfd's number after the reactor
 * closed it.
 */
final class TaskInbox {
    private static final int AWAKE = 0;
    private static final int PARKED = 1;
    private static final VarHandle WAKE_STATE;
    private static final VarHandle PRODUCERS;

    static {
        try {
            var lookup = MethodHandles.lookup();
            WAKE_STATE = lookup.findVarHandle(TaskInbox.class, "wakeState", int.class);
            PRODUCERS = lookup.findVarHandle(TaskInbox.class, "producers", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final MpscTaskQueue<Runnable> tasks = new MpscTaskQueue<>();
    private final int wakeFd;
    private final ReactorStats stats;
    @SuppressWarnings("unused") // through WAKE_STATE
    private volatile int wakeState = AWAKE;
    @SuppressWarnings("unused") // through PRODUCERS
    private volatile int producers;

    TaskInbox(int wakeFd, ReactorStats stats) {
        this.wakeFd = wakeFd;
        this.stats = stats;
        stats.taskQueueDepth(tasks::size);
    }

    /** Reactor thread: queues a task of its own (no wakeup, no door: it is running). */
    void offerOwn(Runnable task) {
        tasks.offer(task);
    }

    /** Any other thread: queues {@code task} and wakes a parked reactor; false once the door is shut. */
    boolean offer(Runnable task) {
        if ((int) PRODUCERS.getAndAdd(this, 1) < 0) {
            PRODUCERS.getAndAdd(this, -1);
            return false;
        }
        try {
            tasks.offer(task);
            if ((int) WAKE_STATE.getVolatile(this) == PARKED && WAKE_STATE.compareAndSet(this, PARKED, AWAKE)) {
                Syscalls.current().eventfdWrite(wakeFd, 1);
                stats.wakeupsSent.increment();
            } else {
                stats.wakeupsElided.increment();
            }
        } finally {
            PRODUCERS.getAndAdd(this, -1);
        }
        return true;
    }

    /** Reactor thread, before a blocking wait: {@return false if a task is already queued (don't block)} */
    boolean park() {
        WAKE_STATE.setVolatile(this, PARKED);
        if (!tasks.isEmpty()) {
            WAKE_STATE.setOpaque(this, AWAKE);
            return false;
        }
        return true;
    }

    /** Reactor thread, after the wait: producers may skip the wakeup again. */
    void awake() {
        WAKE_STATE.setOpaque(this, AWAKE);
    }

    /** Reactor thread. {@return the next task, or null} Waits out an offer whose slot is claimed but not yet filled. */
    Runnable poll() {
        return tasks.poll();
    }

    boolean isEmpty() {
        return tasks.isEmpty();
    }

    int size() {
        return tasks.size();
    }

    /**
     * Shuts the door: from now on {@link #offer} answers false. Returns once no other thread is
     * inside it, so every task offered before is visible in the queue. Idempotent.
     */
    void shutDoor() {
        if ((int) PRODUCERS.getVolatile(this) >= 0) {
            PRODUCERS.getAndAdd(this, Integer.MIN_VALUE);
        }
        while ((int) PRODUCERS.getVolatile(this) != Integer.MIN_VALUE) {
            Thread.onSpinWait(); // a producer is between its check and its offer: nanoseconds
        }
    }
}
