package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.internal.ReactorInternals;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.atomic.LongAdder;

/**
 * What the network layer counts on one reactor: accepts, connections opened and closed (by
 * origin: {@code accepted} by a {@link Server}, {@code outgoing} from {@link Client#connect}) and
 * bytes. The reactor's own counters are {@link io.quiesce.reactor.ReactorStats}; each layer keeps
 * its own.
 *
 * <p>Each counter is written by the reactor thread alone (plain increments published with opaque
 * stores, as {@code ReactorStats} does) and may be read from any thread; a read sees a recent
 * value, never a torn one. The one exception is a connection whose fd is released after its
 * reactor exited (a reference outlived a reactor whose loop failed): its close is counted by the
 * releasing thread in a separate adder, so the connections-open gauge never drifts.
 *
 * <p>A {@link Server}'s listening sockets count their accepts here, on their reactor's set, and
 * in a set of their own of the same kind, which {@link Server#stats()} sums.
 */
public final class NetStats {
    /** What is counted. */
    public enum Counter {
        /** Connections accepted. */
        ACCEPTS,
        /** {@code accept4} failures other than EAGAIN. */
        ACCEPT_ERRORS,
        /** Times accepting paused for a back-off after EMFILE/ENFILE (or another failure). */
        ACCEPT_BACKOFFS,
        /** Of {@link #ACCEPT_BACKOFFS}, those after EMFILE, ENFILE, ENOBUFS or ENOMEM. */
        ACCEPT_BACKOFFS_EXHAUSTED,
        /** Accepted connections opened. */
        ACCEPTED_OPENED,
        /** Accepted connections closed. */
        ACCEPTED_CLOSED,
        /** Outgoing connections ({@code Client.connect}) established. */
        OUTGOING_OPENED,
        /** Outgoing connections closed after they were established. */
        OUTGOING_CLOSED,
        /** Bytes read from sockets. */
        BYTES_READ,
        /** Bytes written to sockets. */
        BYTES_WRITTEN,
    }

    private static final VarHandle LONGS = MethodHandles.arrayElementVarHandle(long[].class);
    private static final Counter[] COUNTERS = Counter.values();

    private final long[] values = new long[COUNTERS.length];
    /** Closes finished by another thread after the reactor exited; several writers, rare. */
    private final LongAdder acceptedClosedOffThread = new LongAdder();
    private final LongAdder outgoingClosedOffThread = new LongAdder();

    /** A reactor's set ({@link #of}), or a listener's own (its server's {@link ServerStats}). */
    NetStats() {}

    /**
     * {@return the network layer's counters of {@code reactor}} Any thread; the same object on
     * every call for one reactor.
     *
     * @param reactor the reactor
     */
    public static NetStats of(Reactor reactor) {
        return ReactorInternals.shared(reactor, NetStats.class, NetStats::new);
    }

    /** Reactor thread only: the counter's one writer. */
    void add(Counter c, long delta) {
        int i = c.ordinal();
        LONGS.setOpaque(values, i, values[i] + delta);
    }

    /** Reactor thread only. */
    void increment(Counter c) {
        add(c, 1);
    }

    /** Any thread, after the reactor exited: an opened connection's fd was released without {@code onClose}. */
    void closedOffThread(boolean outgoing) {
        (outgoing ? outgoingClosedOffThread : acceptedClosedOffThread).increment();
    }

    /**
     * {@return the current value of {@code counter}} The closed counters include the closes
     * finished off the reactor thread.
     *
     * @param counter which counter
     */
    public long get(Counter counter) {
        long v = (long) LONGS.getOpaque(values, counter.ordinal());
        return switch (counter) {
            case ACCEPTED_CLOSED -> v + acceptedClosedOffThread.sum();
            case OUTGOING_CLOSED -> v + outgoingClosedOffThread.sum();
            default -> v;
        };
    }

    /** {@return accepted connections open now} Closed is read first, so the value is never negative. */
    public long acceptedOpen() {
        long closed = get(Counter.ACCEPTED_CLOSED);
        return get(Counter.ACCEPTED_OPENED) - closed;
    }

    /** {@return outgoing connections open now} Closed is read first, so the value is never negative. */
    public long outgoingOpen() {
        long closed = get(Counter.OUTGOING_CLOSED);
        return get(Counter.OUTGOING_OPENED) - closed;
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("NetStats[");
        for (Counter c : COUNTERS) {
            sb.append(c.name().toLowerCase()).append('=').append(get(c)).append(", ");
        }
        return sb.append("accepted_open=").append(acceptedOpen()).append(", outgoing_open=")
                .append(outgoingOpen()).append(']').toString();
    }
}
