package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;

import java.util.ArrayDeque;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Consumer;

/**
 * Steps 2 and 3 of the close protocol for one reactor: the handles whose DEL step is done
 * (removed from epoll, slot dead) and whose fd is not yet released, and the release itself.
 *
 * <p><b>The barrier.</b> {@link #finish} runs only between batches, never inside a handler. The
 * DEL step ran on the reactor thread and freed the slot (bumping its generation), so the rest of
 * any batch already fetched drops the handle's events by token, and no handler of it is running:
 * a handler that closed its own handle has returned before we get here. So a processed handle
 * with no reference left may be released at once.
 *
 * <p><b>The fixpoint.</b> An {@code onClose} or a close future's continuation may close more
 * handles or drop last references; each pass that released something looks again, so the reactor
 * never waits while a finishable close is pending.
 *
 * <p><b>Orphans.</b> Closes and last releases that arrive after the reactor shut its door (the
 * task queue takes nothing more): the reactor drains them while it still runs; once it has
 * {@linkplain #exit() exited} the arriving thread finishes them itself, closing the fd and
 * completing the future but running no user callback off the reactor thread. Each side writes
 * first and reads the other's flag second (add, then read {@code exited}; set {@code exited},
 * then drain), so one of the two always sees an entry.
 */
final class CloseQueue {
    private static final System.Logger LOG = System.getLogger(CloseQueue.class.getName());

    private final ReactorStats stats;
    private final int reactorIndex;
    private final ArrayDeque<Handle> processed = new ArrayDeque<>();
    private final ConcurrentLinkedQueue<Handle> orphans = new ConcurrentLinkedQueue<>();
    private volatile boolean exited;
    private boolean finishing;

    CloseQueue(ReactorStats stats, int reactorIndex) {
        this.stats = stats;
        this.reactorIndex = reactorIndex;
    }

    /** Reactor thread: {@code h}'s DEL step is done; release it once no reference is left. */
    void add(Handle h) {
        processed.add(h);
    }

    boolean isEmpty() {
        return processed.isEmpty();
    }

    int size() {
        return processed.size();
    }

    /**
     * Reactor thread, between batches: releases every processed handle with no reference left,
     * to a fixpoint.
     *
     * @return whether anything was released
     */
    boolean finish(Syscalls sys) {
        if (finishing || processed.isEmpty()) {
            return false; // re-entered from an onClose: the outer pass looks again
        }
        finishing = true;
        boolean any = false;
        try {
            boolean progress = true;
            while (progress && !processed.isEmpty()) {
                progress = false;
                for (int n = processed.size(); n > 0; n--) {
                    Handle h = processed.poll();
                    if (h.references() == 0) {
                        release(h, sys);
                        progress = true;
                    } else {
                        processed.add(h);
                    }
                }
                any |= progress;
            }
        } finally {
            finishing = false;
        }
        return any;
    }

    private void release(Handle h, Syscalls sys) {
        if (!h.tryMarkClosed()) {
            return;
        }
        closeFd(h, sys);
        stats.increment(Counter.CLOSES_COMPLETED);
        stats.recordCloseLatency(System.nanoTime() - h.closeRequestedNanos);
        try {
            h.handler().onClose(h, h.closeCause);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.WARNING, "onClose of fd " + h.fd() + " threw", t);
        } finally {
            h.closeFuture().complete(null);
        }
    }

    /** {@code close(fd)} of a handle marked CLOSED: exactly once. */
    private void closeFd(Handle h, Syscalls sys) {
        FdOwners.release(h); // before close: the number is not reusable until then
        int r = sys.close(h.fd());
        if (r < 0) {
            stats.increment(Counter.CLOSE_ERRORS);
            LOG.log(System.Logger.Level.WARNING, "close(fd {0}): {1}", h.fd(), Errno.name(-r));
        }
    }

    /** Any thread, once the door is shut: leave {@code h} to the reactor, or finish it here if it exited. */
    void adopt(Handle h) {
        orphans.add(h);
        if (exited) {
            finishOrphansOffThread();
        }
    }

    /** Reactor thread: hands every orphan to {@code processClose} (a no-op for one already processed). */
    boolean adoptOrphans(Consumer<Handle> processClose) {
        boolean any = false;
        Handle h;
        while ((h = orphans.poll()) != null) {
            any = true;
            processClose.accept(h);
        }
        return any;
    }

    boolean hasOrphans() {
        return !orphans.isEmpty();
    }

    /** The reactor thread finishes no close after this; later arrivals finish themselves. */
    void exit() {
        exited = true;
    }

    /**
     * After the reactor exited: releases every orphan with no reference left. Its reactor waits
     * on no epoll any more, so no event can reach it; the fd is closed and the future completed,
     * but {@code onClose} does not run on this foreign thread (an owned handle's release hook
     * does: it only counts).
     */
    void finishOrphansOffThread() {
        Handle h;
        while ((h = orphans.poll()) != null) {
            if (h.references() == 0 && h.tryMarkClosed()) {
                closeFd(h, Syscalls.current());
                LOG.log(System.Logger.Level.DEBUG, "fd {0} released after reactor {1} exited; onClose not run off its thread",
                        h.fd(), reactorIndex);
                Runnable told = h.releasedWithoutOnClose();
                if (told != null) { // Quiesce's own bookkeeping, not a user callback
                    try {
                        told.run();
                    } catch (Throwable t) {
                        LOG.log(System.Logger.Level.WARNING, "release hook of fd " + h.fd() + " threw", t);
                    }
                }
                h.closeFuture().complete(null);
            } // else a reference is still held: its release adopts it again
        }
    }
}
