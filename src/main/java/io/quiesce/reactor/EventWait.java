package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.EpollBatch;
import io.quiesce.uring.TransportRing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.atomic.AtomicBoolean;

/**
 * How a reactor waits for events, and where they land: {@code epoll_pwait2} (or
 * {@code epoll_wait} before Linux 5.11) on plain epoll, or one {@code io_uring_enter} that carries
 * the iteration's interest changes and the wait on the batch backend, or one
 * {@code io_uring_enter} that submits the socket ops queued by the net layer and waits for the
 * first CQE of any kind (the epoll wait's included) on the io_uring transport, whose CQEs it then
 * hands to their owners. Owns the events array and grows it when a wait fills it. Reactor thread
 * only (the ring is single-issuer).
 */
final class EventWait {
    private static final System.Logger LOG = System.getLogger(EventWait.class.getName());
    /** The batch backend's unavailability is logged once per process, not once per reactor. */
    private static final AtomicBoolean FALLBACK_LOGGED = new AtomicBoolean();
    private static final AtomicBoolean TRANSPORT_FALLBACK_LOGGED = new AtomicBoolean();

    private final Syscalls sys;
    private final int epfd;
    private final Arena arena;
    private final ReactorStats stats;
    private final InterestBatch batch;
    private final InterestBatch.FailureSink onFailure;
    private final int eventsLimit;
    private MemorySegment events;
    private int maxEvents;
    private boolean pwait2 = true;
    /** The io_uring ring of the batch backend, or null on plain epoll. */
    private EpollBatch ring;
    /** The io_uring transport's ring, or null. */
    private TransportRing transport;
    private long entersCounted;
    private long sqesCounted, cqesCounted, staleCounted, cancelsCounted, refillsCounted, exhaustedCounted;

    EventWait(Syscalls sys, int epfd, Arena arena, ReactorStats stats, InterestBatch batch,
              InterestBatch.FailureSink onFailure, int initialEvents, int eventsLimit) {
        this.sys = sys;
        this.epfd = epfd;
        this.arena = arena;
        this.stats = stats;
        this.batch = batch;
        this.onFailure = onFailure;
        this.eventsLimit = eventsLimit;
        this.maxEvents = initialEvents;
        this.events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * maxEvents, 8);
    }

    /** Switches to the batch backend; {@return false, logged once, where io_uring cannot do it here} */
    boolean useBatch(EpollBatch.Options options) {
        try {
            ring = EpollBatch.open(epfd, events, maxEvents, arena, options);
        } catch (EpollBatch.UnavailableException e) {
            if (FALLBACK_LOGGED.compareAndSet(false, true)) {
                LOG.log(System.Logger.Level.WARNING, "io_uring batch backend unavailable ({0}); reactors use plain epoll",
                        e.getMessage());
            }
            return false;
        }
        batch.useRing(ring);
        ring.onInterrupt(() -> stats.increment(Counter.EPOLL_WAITS_INTERRUPTED));
        return true;
    }

    /** Switches to the io_uring transport; {@return false, logged once, where io_uring cannot do it here} */
    boolean useTransport(TransportRing.Options options) {
        try {
            transport = TransportRing.open(epfd, events, maxEvents, arena, options);
            transport.onInterrupt(() -> stats.increment(Counter.EPOLL_WAITS_INTERRUPTED));
        } catch (EpollBatch.UnavailableException e) {
            if (TRANSPORT_FALLBACK_LOGGED.compareAndSet(false, true)) {
                LOG.log(System.Logger.Level.WARNING, "io_uring transport unavailable ({0}); reactors use plain epoll",
                        e.getMessage());
            }
            return false;
        }
        return true;
    }

    /** {@return the io_uring transport's ring, or null} */
    TransportRing transport() {
        return transport;
    }

    /**
     * Hands the CQEs the last wait reaped to their owners (io_uring transport; 0 elsewhere).
     *
     * @return how many were delivered or dropped as stale
     */
    int dispatchCompletions() {
        TransportRing t = transport;
        if (t == null || t.pendingCompletions() == 0) {
            return 0;
        }
        int n = t.pendingCompletions();
        try {
            t.dispatch();
        } finally {
            countTransport(t);
        }
        return n;
    }

    /**
     * After the loop stopped: one short round to reap completions (cancelled ops of closing
     * handles) and hand them over; never throws. A ring that can no longer be entered (it may be
     * why the loop stopped) is abandoned instead: torn down, its owners told their ops are over.
     *
     * @return CQEs handed over, or owners told of a lost ring
     */
    int pumpCompletions() {
        TransportRing t = transport;
        if (t == null) {
            return 0;
        }
        try {
            if (!t.lost()) {
                t.drain(1_000_000L); // not the epoll wait: the epoll may be why the loop stopped
                countTransport(t);
            }
            if (t.lost()) {
                return abandonTransport();
            }
            return dispatchCompletions();
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.DEBUG, "reaping io_uring completions after the loop stopped: {0}", e.toString());
            return 0;
        }
    }

    /**
     * After the loop stopped, for a lost ring or when closes still wait for ops whose completions
     * do not come: tears the ring down ({@link TransportRing#abandon}), so those ops count as ended; never throws.
     *
     * @return owners told
     */
    int abandonTransport() {
        TransportRing t = transport;
        if (t == null) {
            return 0;
        }
        try {
            LOG.log(System.Logger.Level.DEBUG, "io_uring transport ring {0}; abandoning its ops in flight",
                    t.lost() ? "lost" : "silent after the loop stopped");
            return t.abandon();
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.DEBUG, "abandoning the io_uring transport ring: {0}", e.toString());
            return 0;
        }
    }

    private void countTransport(TransportRing t) {
        stats.add(Counter.URING_ENTERS, t.enters() - entersCounted);
        entersCounted = t.enters();
        stats.add(Counter.URING_SQES, t.sqesSubmitted() - sqesCounted);
        sqesCounted = t.sqesSubmitted();
        stats.add(Counter.URING_CQES, t.cqesReaped() - cqesCounted);
        cqesCounted = t.cqesReaped();
        stats.add(Counter.URING_STALE_CQES, t.staleCqes() - staleCounted);
        staleCounted = t.staleCqes();
        stats.add(Counter.URING_CANCELS, t.cancels() - cancelsCounted);
        cancelsCounted = t.cancels();
        stats.add(Counter.URING_BUFFER_REFILLS, t.bufferRefills() - refillsCounted);
        refillsCounted = t.bufferRefills();
        stats.add(Counter.URING_BUFFERS_EXHAUSTED, t.buffersExhausted() - exhaustedCounted);
        exhaustedCounted = t.buffersExhausted();
    }

    /** {@return the array the last wait wrote its events to} */
    MemorySegment events() {
        return events;
    }

    /**
     * Waits at most {@code timeoutNanos} ({@code -1}: no limit, {@code 0}: poll).
     *
     * @return the number of events in {@link #events()}
     */
    int await(long timeoutNanos) throws SyscallException {
        if (transport != null) {
            int n = transport.await(timeoutNanos);
            countTransport(transport);
            return n;
        }
        return ring != null ? ringWait(timeoutNanos) : epollWait(timeoutNanos);
    }

    /** After {@code n} events were dispatched: a wait that filled the array gets a larger one next. */
    void growIfFull(int n) {
        if (n == maxEvents && maxEvents < eventsLimit && (ring == null || !ring.waitInFlight())
                && (transport == null || !transport.waitInFlight())) {
            maxEvents = Math.min(maxEvents * 2, eventsLimit);
            events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * maxEvents, 8);
            if (ring != null) {
                ring.setEvents(events, maxEvents);
            }
            if (transport != null) {
                transport.setEvents(events, maxEvents);
            }
            stats.increment(Counter.EVENT_ARRAY_GROWTHS);
        }
    }

    /** Closes the ring, if any; on the reactor thread, before its epoll fd is closed. */
    void close() {
        if (transport != null) {
            transport.close();
            transport = null;
        }
        if (ring != null) {
            ring.close();
            ring = null;
        }
    }

    /**
     * {@code epoll_wait} for at most {@code timeoutNanos}. EINTR (a signal arrived; a sampling
     * profiler sends them all the time) waits again for what is left until the deadline, not for
     * the whole timeout again, so signals never postpone a timer.
     */
    private int epollWait(long timeoutNanos) throws SyscallException {
        long deadline = timeoutNanos > 0 ? System.nanoTime() + timeoutNanos : 0;
        long remaining = timeoutNanos;
        while (true) {
            int n;
            if (pwait2) {
                n = sys.epollWaitNanos(epfd, events, maxEvents, remaining);
                if (n == -Errno.ENOSYS) { // Linux < 5.11: millisecond timeouts, rounded up
                    pwait2 = false;
                    continue;
                }
            } else {
                int millis = remaining < 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, (remaining + 999_999) / 1_000_000);
                n = sys.epollWait(epfd, events, maxEvents, millis);
            }
            if (n >= 0) {
                return n;
            }
            if (n != -Errno.EINTR) {
                throw new SyscallException("epoll_wait", epfd, -n);
            }
            stats.increment(Counter.EPOLL_WAITS_INTERRUPTED);
            if (timeoutNanos > 0) {
                remaining = Math.max(0, deadline - System.nanoTime());
            }
        }
    }

    /**
     * The batch backend's wait: the queued ADDs and MODs and the {@code EPOLL_WAIT} in one
     * {@code io_uring_enter} (EINTR is retried inside, for the time left), then the per-op
     * results, applied before any event is dispatched.
     */
    private int ringWait(long timeoutNanos) throws SyscallException {
        if (batch.hasQueued() && timeoutNanos != 0 && !ring.linksOpsToWait()) {
            // An op's result is known only when its round returns, and a refused registration
            // (or an EEXIST/ENOENT to map) must be dealt with before the reactor sleeps, or the
            // handle would wait for some unrelated event to be closed. Usually the ops are linked
            // in front of a new wait, which a failing op cancels: one enter. With a wait still
            // armed from an earlier round there is nothing to link to, so such a round first
            // hands the ops over without sleeping; if nothing needs doing, a second enter sleeps
            // on the same wait.
            int n = ringRound(0);
            if (n != 0 || batch.lastRoundNeededWork()) {
                return n;
            }
        }
        return ringRound(timeoutNanos);
    }

    private int ringRound(long timeoutNanos) throws SyscallException {
        int n = ring.submitAndWait(timeoutNanos);
        batch.completeRound(onFailure);
        long enters = ring.enters();
        stats.add(Counter.URING_ENTERS, enters - entersCounted);
        entersCounted = enters;
        if (n < 0) {
            throw new SyscallException("io_uring_enter(epoll_wait)", epfd, -n);
        }
        return n;
    }
}
