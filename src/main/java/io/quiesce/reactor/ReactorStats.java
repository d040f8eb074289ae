package io.quiesce.reactor;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.LongAdder;

/**
 * The counters a reactor keeps anyway. Each is written by the reactor thread alone (plain
 * increments published with opaque stores: no fence, no contention on the event path) and may be
 * read from any thread; a read sees a recent value, never a torn one. Only the wakeup counters
 * have several writers (the threads that call {@link Reactor#execute}) and use {@link LongAdder}.
 */
public final class ReactorStats {
    /** What is counted. */
    public enum Counter {
        /** {@code epoll_wait} calls. */
        EPOLL_WAITS,
        /** {@code epoll_wait} calls that returned no event. */
        EPOLL_WAITS_EMPTY,
        /** {@code epoll_wait} calls interrupted by a signal (EINTR) and resumed for what was left. */
        EPOLL_WAITS_INTERRUPTED,
        /** Events handed to handlers. */
        EVENTS_DISPATCHED,
        /** Events dropped because their token named a dead slot or an old generation. */
        STALE_EVENTS_DROPPED,
        /** Wakeups received through the eventfd. */
        WAKEUPS_RECEIVED,
        /** Tasks run. */
        TASKS_RUN,
        /** {@code epoll_ctl(ADD)} issued. */
        CTL_ADD,
        /** {@code epoll_ctl(MOD)} issued. */
        CTL_MOD,
        /** {@code epoll_ctl(DEL)} issued. */
        CTL_DEL,
        /** ADDs not issued: the handle was closed in the same iteration it was registered. */
        CTL_ADD_SAVED,
        /** MODs not issued: the mask was already the kernel's, or several changes made one. */
        CTL_MOD_SAVED,
        /**
         * DELs not issued: the ADD asked for was never issued, or the fd never left Quiesce
         * (closing it removes it). A socket of the io_uring transport, never in epoll, counts none.
         */
        CTL_DEL_SAVED,
        /** ADDs that met EEXIST and were issued again as MOD. */
        CTL_EEXIST_AS_MOD,
        /** MODs that met ENOENT and were issued again as ADD. */
        CTL_ENOENT_AS_ADD,
        /** Pending interest changes dropped because the handle was closing. */
        CTL_DROPPED_CLOSING,
        /** ADDs and MODs carried by an {@code io_uring_enter} of the batch backend instead of a syscall each. */
        CTL_BATCHED,
        /** {@code io_uring_enter} calls of the batch backend (its waits and the ops they carry). */
        URING_ENTERS,
        /** SQEs the kernel consumed on the io_uring transport (its ops and the epoll wait). */
        URING_SQES,
        /** CQEs reaped on the io_uring transport. */
        URING_CQES,
        /** CQEs dropped because their token's generation was stale (never delivered to a new owner). */
        URING_STALE_CQES,
        /** {@code IORING_OP_ASYNC_CANCEL}s submitted (closes, paused reads). */
        URING_CANCELS,
        /** Publishes of recycled receive buffers back to the provided-buffer ring. */
        URING_BUFFER_REFILLS,
        /** Multishot receives ended by {@code ENOBUFS} (the buffer ring ran dry) and re-armed. */
        URING_BUFFERS_EXHAUSTED,
        /** Handles registered. */
        HANDLES_REGISTERED,
        /** Closes completed (fd released). */
        CLOSES_COMPLETED,
        /** {@code close(fd)} calls that failed; EBADF here would mean a double close. */
        CLOSE_ERRORS,
        /** Handler exceptions (each closed its handle). */
        HANDLER_FAILURES,
        /** Timers fired. */
        TIMERS_FIRED,
        /** Nanoseconds spent outside {@code epoll_wait} (running). */
        BUSY_NANOS,
        /**
         * Nanoseconds spent inside {@code epoll_wait}, credited when each call returns; see
         * {@link ReactorStats#waitNanos()} for a value that includes the wait in progress.
         */
        WAIT_NANOS,
        /** Times the events array was grown because a call filled it. */
        EVENT_ARRAY_GROWTHS,
        /** Sum of close latencies (close requested to fd released), nanoseconds. */
        CLOSE_LATENCY_NANOS_SUM,
    }

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final VarHandle PARKED_SINCE;
    private static final VarHandle WAKE_SEQ;
    static {
        try {
            var l = MethodHandles.lookup();
            PARKED_SINCE = l.findVarHandle(ReactorStats.class, "parkedSinceNanos", long.class);
            WAKE_SEQ = l.findVarHandle(ReactorStats.class, "wakeSeq", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
    /** {@link #parkedSinceNanos} while the reactor is not inside {@code epoll_wait}. */
    private static final long NOT_PARKED = Long.MIN_VALUE;
    private static final Counter[] COUNTERS = Counter.values();

    private final long[] values = new long[COUNTERS.length];
    private static final java.util.function.LongConsumer NO_LISTENER = nanos -> {};
    private volatile java.util.function.LongConsumer closeLatencyListener = NO_LISTENER;
    final LongAdder wakeupsSent = new LongAdder();
    final LongAdder wakeupsElided = new LongAdder();
    private volatile int handlesOpen;
    /**
     * When the reactor entered the {@code epoll_wait} it is in, or {@link #NOT_PARKED}. Single
     * writer (the reactor thread), so a reader can credit the wait in progress: without it an idle
     * reactor's wait time stands still (0 busy, 0 wait) and its first wake-up looks like a burst.
     */
    @SuppressWarnings("unused") // through PARKED_SINCE
    private long parkedSinceNanos = NOT_PARKED;
    /**
     * Odd while the reactor is crediting a finished wait (a seqlock): a reader must never see the
     * wait both credited to {@link Counter#WAIT_NANOS} and still in progress, or the exported
     * counter would run ahead and then go back, which Prometheus reads as a counter reset.
     */
    @SuppressWarnings("unused") // through WAKE_SEQ
    private long wakeSeq;
    /** The largest {@link #waitNanos()} returned: the reading is never allowed to go back. */
    private final java.util.concurrent.atomic.AtomicLong waitNanosRead = new java.util.concurrent.atomic.AtomicLong();
    private volatile java.util.function.IntSupplier taskQueueDepth = () -> 0;

    ReactorStats() {}

    /**
     * Adds to a counter. <b>Reactor thread only</b>: each counter has that one writer. The layers
     * above keep their own counters (the network layer's are {@code io.quiesce.net.NetStats}).
     *
     * @param c the counter
     * @param delta the amount
     */
    void add(Counter c, long delta) {
        int i = c.ordinal();
        LONGS.setOpaque(values, i, values[i] + delta);
    }

    /**
     * Adds one to a counter. <b>Reactor thread only.</b>
     *
     * @param c the counter
     */
    void increment(Counter c) {
        int i = c.ordinal();
        LONGS.setOpaque(values, i, values[i] + 1);
    }

    /** Reactor thread only: once per completed close. */
    void recordCloseLatency(long nanos) {
        add(Counter.CLOSE_LATENCY_NANOS_SUM, nanos);
        closeLatencyListener.accept(nanos);
    }

    /**
     * Sets what is told each close's latency (close requested to fd released, in nanoseconds),
     * e.g. a histogram; called on the reactor thread once per close, never per event. One listener
     * per reactor: a second call replaces the first.
     *
     * @param listener the listener, or null for none
     */
    public void closeLatencyListener(java.util.function.LongConsumer listener) {
        this.closeLatencyListener = listener == null ? NO_LISTENER : listener;
    }

    /** Reactor thread only: about to block in {@code epoll_wait}. */
    void parking(long nowNanos) {
        PARKED_SINCE.setRelease(this, nowNanos);
    }

    /** Reactor thread only: {@code epoll_wait} returned after {@code waitedNanos}. */
    void woke(long waitedNanos) {
        long seq = (long) WAKE_SEQ.getOpaque(this);
        WAKE_SEQ.setOpaque(this, seq + 1);
        VarHandle.storeStoreFence(); // the odd sequence is visible before either field changes
        add(Counter.WAIT_NANOS, waitedNanos);
        PARKED_SINCE.setOpaque(this, NOT_PARKED);
        WAKE_SEQ.setRelease(this, seq + 2);
    }

    /**
     * {@return nanoseconds the reactor has spent in {@code epoll_wait}, including the wait it is
     * in now} Unlike {@link Counter#WAIT_NANOS} (credited when a call returns), this keeps growing
     * while the reactor is parked, so an idle reactor reads as idle. Never decreases. Any thread.
     */
    public long waitNanos() {
        long credited;
        long parkedSince;
        long now;
        for (int spins = 0; ; spins++) {
            long seq = (long) WAKE_SEQ.getAcquire(this);
            if ((seq & 1) != 0) {
                if (spins > 10_000) { // the reactor was descheduled between two stores: don't wait on it
                    return waitNanosRead.get();
                }
                Thread.onSpinWait(); // the reactor is between two stores: a few nanoseconds
                continue;
            }
            credited = get(Counter.WAIT_NANOS);
            parkedSince = (long) PARKED_SINCE.getOpaque(this);
            now = System.nanoTime();
            VarHandle.loadLoadFence();
            if ((long) WAKE_SEQ.getOpaque(this) == seq) {
                break;
            }
        }
        long v = credited + (parkedSince == NOT_PARKED ? 0 : Math.max(0, now - parkedSince));
        // A reading taken just after the reactor woke but before it credited the wait can exceed
        // the credited total by those few nanoseconds: hold the counter there, never go back.
        return waitNanosRead.accumulateAndGet(v, Math::max);
    }

    void handlesOpen(int n) {
        handlesOpen = n;
    }

    /**
     * {@return the current value of {@code counter}}
     *
     * @param counter which counter
     */
    public long get(Counter counter) {
        return (long) LONGS.getOpaque(values, counter.ordinal());
    }

    /** {@return wakeup syscalls sent to this reactor by other threads} */
    public long wakeupsSent() {
        return wakeupsSent.sum();
    }

    /** {@return wakeups not sent because the reactor was running} */
    public long wakeupsElided() {
        return wakeupsElided.sum();
    }

    void taskQueueDepth(java.util.function.IntSupplier depth) {
        this.taskQueueDepth = depth;
    }

    /** {@return tasks queued and not yet run (approximate: producers may be mid-offer)} */
    public int taskQueueDepth() {
        return taskQueueDepth.getAsInt();
    }

    /** {@return handles registered and not yet closed} */
    public int handlesOpen() {
        return handlesOpen;
    }

    /** {@return epoll_ctl calls issued, all ops} */
    public long ctlIssued() {
        return get(Counter.CTL_ADD) + get(Counter.CTL_MOD) + get(Counter.CTL_DEL);
    }

    /** {@return epoll_ctl calls saved by coalescing, all ops} */
    public long ctlSaved() {
        return get(Counter.CTL_ADD_SAVED) + get(Counter.CTL_MOD_SAVED) + get(Counter.CTL_DEL_SAVED);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("ReactorStats[");
        for (Counter c : COUNTERS) {
            sb.append(c.name().toLowerCase()).append('=').append(get(c)).append(", ");
        }
        return sb.append("wakeups_sent=").append(wakeupsSent()).append(", wakeups_elided=")
                .append(wakeupsElided()).append(", handles_open=").append(handlesOpen).append(']').toString();
    }
}
