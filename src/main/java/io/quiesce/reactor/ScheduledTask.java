package io.quiesce.reactor;

/**
 * A task scheduled on a reactor's timer ({@link Reactor#schedule}). Timers fire on the reactor
 * thread in deadline order (ties in the order they were scheduled), never before their deadline.
 */
public final class ScheduledTask implements Comparable<ScheduledTask> {
    private static final java.lang.invoke.VarHandle CANCELLED;

    static {
        try {
            CANCELLED = java.lang.invoke.MethodHandles.lookup().findVarHandle(ScheduledTask.class, "cancelled", boolean.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    final long deadlineNanos;
    final Runnable task;
    private final Reactor owner;
    /** Set by the reactor when the task enters its timer heap; orders equal deadlines. */
    long sequence;
    private volatile boolean cancelled;

    ScheduledTask(Reactor owner, long deadlineNanos, Runnable task) {
        this.owner = owner;
        this.deadlineNanos = deadlineNanos;
        this.task = task;
    }

    /**
     * Cancels the task; any thread. A task already running, or run, is not affected.
     *
     * @return false if it was already cancelled
     */
    public boolean cancel() {
        if (!CANCELLED.compareAndSet(this, false, true)) {
            return false;
        }
        owner.timerCancelled(); // lets the reactor purge cancelled timers before they pile up
        return true;
    }

    /** {@return whether {@link #cancel()} was called} */
    public boolean isCancelled() {
        return cancelled;
    }

    /** {@return the deadline, in {@link System#nanoTime()} terms} */
    public long deadlineNanos() {
        return deadlineNanos;
    }

    @Override
    public int compareTo(ScheduledTask o) {
        int c = Long.compare(deadlineNanos - o.deadlineNanos, 0); // nanoTime may wrap: compare differences
        return c != 0 ? c : Long.compare(sequence, o.sequence);
    }
}
