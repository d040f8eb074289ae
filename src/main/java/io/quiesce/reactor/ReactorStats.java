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
        /** DELs not issued: never added, or the fd never left Quiesce (closing it removes it). */
        CTL_DEL_SAVED,
        /** ADDs that met EEXIST and were issued again as MOD. */
        CTL_EEXIST_AS_MOD,
        /** MODs that met ENOENT and were issued again as ADD. */
        CTL_ENOENT_AS_ADD,
        /** Pending interest changes dropped because the handle was closing. */
        CTL_DROPPED_CLOSING,
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
        /** Nanoseconds spent inside {@code epoll_wait}. */
        WAIT_NANOS,
        /** Times the events array was grown because a call filled it. */
        EVENT_ARRAY_GROWTHS,
        /** Sum of close latencies (close requested to fd released), nanoseconds. */
        CLOSE_LATENCY_NANOS_SUM,
        /** Connections accepted (network layer). */
        ACCEPTS,
        /** accept4 failures other than EAGAIN (network layer). */
        ACCEPT_ERRORS,
        /** Times accepting paused for a back-off after EMFILE/ENFILE (network layer). */
        ACCEPT_BACKOFFS,
        /** Connections opened, accepted or connected (network layer). */
        CONNECTIONS_OPENED,
        /** Connections closed (network layer). */
        CONNECTIONS_CLOSED,
        /** Bytes read from sockets (network layer). */
        BYTES_READ,
        /** Bytes written to sockets (network layer). */
        BYTES_WRITTEN,
    }

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final Counter[] COUNTERS = Counter.values();

    private final long[] values = new long[COUNTERS.length];
    private static final java.util.function.LongConsumer NO_LISTENER = nanos -> {};
    private volatile java.util.function.LongConsumer closeLatencyListener = NO_LISTENER;
    final LongAdder wakeupsSent = new LongAdder();
    final LongAdder wakeupsElided = new LongAdder();
    private volatile int handlesOpen;
    private volatile java.util.function.IntSupplier taskQueueDepth = () -> 0;

    ReactorStats() {}

    /**
     * Adds to a counter. <b>Reactor thread only</b>: each counter has that one writer. Layers
     * above the reactor (the network layer) count their own events here from handlers.
     *
     * @param c the counter
     * @param delta the amount
     */
    public void add(Counter c, long delta) {
        int i = c.ordinal();
        LONGS.setOpaque(values, i, values[i] + delta);
    }

    /**
     * Adds one to a counter. <b>Reactor thread only.</b>
     *
     * @param c the counter
     */
    public void increment(Counter c) {
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
