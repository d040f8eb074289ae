package io.quiesce.reactor;

import java.util.ArrayList;
import java.util.List;

/**
 * How a reactor stops, on its own thread: once asked ({@link #step}, run each loop iteration), it
 * cancels its timers, closes every handle, and shuts its task door only when nothing is left
 * open, queued or closing; after a loop that ended by failing ({@link #drainAfterStop}), it does
 * the same without waiting for a next batch.
 */
final class ReactorShutdown {
    private static final System.Logger LOG = System.getLogger(Reactor.class.getName());
    /** Empty 1 ms pumps of the io_uring ring, after the loop stopped, before it is abandoned. */
    private static final int QUIET_PUMPS = 200;

    private final Reactor reactor;
    private final int index;
    private final HandleRegistry registry;
    private final HandleTable table;
    private final TimerHeap timers;
    private final TaskInbox inbox;
    private final CloseQueue closes;
    /** Reactor thread only: set once the reactor began closing everything, never cleared. */
    private boolean started;

    ReactorShutdown(Reactor reactor, int index, HandleRegistry registry, HandleTable table, TimerHeap timers,
                    TaskInbox inbox, CloseQueue closes) {
        this.reactor = reactor;
        this.index = index;
        this.registry = registry;
        this.table = table;
        this.timers = timers;
        this.inbox = inbox;
        this.closes = closes;
    }

    /** {@return whether the reactor began closing everything} Reactor thread only. */
    boolean started() {
        return started;
    }

    /** Shutdown, run each iteration once requested: true when the reactor may stop. */
    boolean step() {
        if (!started) {
            started = true;
            timers.cancelAll();
            closeAll(null);
        }
        closes.adoptOrphans(registry::processClose); // closes that found the door shut (none before it shuts)
        if (table.open() > 0 || !closes.isEmpty() || !inbox.isEmpty()) {
            return false;
        }
        inbox.shutDoor();
        // What came in before the door shut, and closes that found it shut, are finished first.
        return inbox.isEmpty() && !closes.hasOrphans();
    }

    /** Closes every handle in the table (a snapshot: closing changes it). */
    private void closeAll(Throwable cause) {
        List<Handle> open = new ArrayList<>();
        table.forEach(open::add);
        for (Handle h : open) {
            h.closeWith(cause);
        }
    }

    /**
     * After the loop ended, normally (nothing is left: a no-op) or by failing: shuts the door,
     * then runs what was accepted before it shut, closes every handle and finishes every close it
     * can, until nothing moves. After a failure there is no further batch, so nothing waits for
     * one. A handle with a reference still held is finished by its last release.
     */
    void drainAfterStop(Throwable failure) {
        reactor.shutdownRequested = true;
        started = true;
        inbox.shutDoor();
        timers.cancelAll();
        Throwable cause = failure == null ? null : new ClosedHandleException("reactor " + index + " failed: " + failure);
        int quietPumps = 0;
        for (int pass = 0; pass < 1_000; pass++) { // bounded: a task may keep queueing tasks
            boolean progress = false;
            try {
                while (reactor.runOneTask()) {
                    progress = true;
                }
                progress |= closes.adoptOrphans(registry::processClose);
                closeAll(cause);
                progress |= reactor.finishCloses();
                if (!closes.isEmpty() && reactor.wait.transport() != null) {
                    // io_uring ops still in flight hold their handles' references: reap their
                    // (cancelled) completions so those closes can finish. Each pump waits 1 ms;
                    // if none comes for QUIET_PUMPS of them, the ring is torn down instead, and
                    // its ops count as ended: the closes complete either way.
                    if (reactor.wait.pumpCompletions() > 0) {
                        progress = true;
                        quietPumps = 0;
                    } else if (++quietPumps < QUIET_PUMPS) {
                        progress = true; // cancelled ops' completions may still be on their way
                    } else {
                        progress |= reactor.wait.abandonTransport() > 0;
                    }
                    progress |= reactor.finishCloses();
                }
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "reactor " + index + ": closing after a failure", t);
            }
            if (!progress && inbox.isEmpty() && !closes.hasOrphans() && table.open() == 0) {
                return;
            }
        }
    }
}
