package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;

/**
 * A reactor's registrations: how a {@code register} call becomes a handle (the checks, the claim
 * on the fd number, the attach on the reactor thread that puts it in the table and queues its
 * {@code EPOLL_CTL_ADD}), and step 1 of the close protocol (the {@code DEL}, the slot marked dead,
 * the handle queued on the {@link CloseQueue} whose steps 2 and 3 release it).
 *
 * <p>{@link #register} and {@link #registerCompletions} may be called from any thread; they reach
 * the reactor's state only through its task queue. Everything else runs on the reactor thread.
 */
final class HandleRegistry {
    private static final System.Logger LOG = System.getLogger(Reactor.class.getName());

    private final Reactor reactor;
    private final int index;
    private final ReactorStats stats;
    private final HandleTable table;
    private final CloseQueue closes;
    /** Made once, like the task it replaces: a method reference per call would allocate. */
    private final Runnable finishClosesTask;

    HandleRegistry(Reactor reactor, int index, ReactorStats stats, HandleTable table, CloseQueue closes) {
        this.reactor = reactor;
        this.finishClosesTask = reactor::finishCloses;
        this.index = index;
        this.stats = stats;
        this.table = table;
        this.closes = closes;
    }

    /** Any thread: {@link Handle#closeWith} began this handle's close. */
    void closeRequested(Handle h) {
        if (reactor.inReactorThread()) {
            processClose(h);
        } else if (!reactor.tryExecute(() -> processClose(h))) {
            closes.adopt(h);
        }
    }

    /** Any thread: the last reference to a closing handle was dropped. */
    void lastReferenceDropped(Handle h) {
        if (reactor.inReactorThread()) {
            return; // finishCloses() runs at the next point between batches, before any wait
        }
        if (!reactor.tryExecute(finishClosesTask)) {
            closes.adopt(h);
        }
    }

    /** See {@link ReactorHooks#registerCompletions}. Any thread. */
    Handle registerCompletions(int fd, EventHandler handler, Runnable onCloseProcessed,
                               Runnable releasedWithoutOnClose) {
        checkRegistration(fd, 0, handler);
        return publish(new Handle(reactor, fd, handler, true, new Registration(reactor, 0, true, onCloseProcessed),
                releasedWithoutOnClose));
    }

    private void checkRegistration(int fd, int interest, EventHandler handler) {
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd: " + fd);
        }
        Interest.check(interest);
        if (handler == null) {
            throw new NullPointerException("handler");
        }
        if (reactor.shutdownRequested) {
            throw new ClosedHandleException("reactor " + index + " is shutting down");
        }
    }

    Handle register(int fd, int interest, EventHandler handler, boolean exclusive,
            Runnable releasedWithoutOnClose) {
        checkRegistration(fd, interest, handler);
        return publish(new Handle(reactor, fd, interest, handler, exclusive, releasedWithoutOnClose));
    }

    private Handle publish(Handle h) {
        int fd = h.fd();
        Handle owner = FdOwners.claim(h);
        if (owner != null) {
            throw new IllegalArgumentException("fd " + fd + " is already registered (" + owner
                    + " on reactor " + owner.reactor().index() + "): one live handle per fd");
        }
        if (reactor.inReactorThread()) {
            attach(h);
        } else if (!reactor.tryExecute(() -> attach(h))) {
            FdOwners.release(h);
            throw new ClosedHandleException("reactor " + index + " is shut down");
        }
        return h;
    }

    private void attach(Handle h) {
        stats.increment(Counter.HANDLES_REGISTERED);
        if (!h.isOpen()) {
            // Closed by another thread before this task ran. Its close request (a task behind this
            // one, or an orphan once the door has shut) finishes it; it never enters the table or
            // the kernel, so no event can follow its onClose.
            return;
        }
        if (reactor.stopping.started()) { // slipped in while the reactor was closing everything
            h.closeWith(new ClosedHandleException("reactor " + index + " is shutting down"));
            return;
        }
        table.add(h);
        stats.handlesOpen(table.open());
        if (!h.registration.completionOnly()) {
            reactor.batch.change(h, h.registration.wantedInterest());
        }
    }

    /** Step 1 of the close protocol: DEL and mark the slot dead; the release waits for the references. */
    void processClose(Handle h) {
        Registration reg = h.registration;
        if (reg.closeProcessed()) {
            return;
        }
        reg.markCloseProcessed();
        if (reg.slot() >= 0 && reg.completionOnly()) {
            reactor.batch.remove(h); // in epoll only if it asked for an interest (an error edge); an owned fd: no DEL
            table.remove(h);
            stats.handlesOpen(table.open());
            cancelOps(h);
        } else if (reg.slot() >= 0) {
            int r = reactor.batch.remove(h);
            if (r < 0) {
                LOG.log(System.Logger.Level.DEBUG, "epoll_ctl(DEL) of fd {0}: {1}", h.fd(), Errno.name(-r));
            }
            table.remove(h);
            stats.handlesOpen(table.open());
        } else { // closed before the reactor attached it: neither ADD nor DEL is needed
            stats.increment(Counter.CTL_ADD_SAVED);
            stats.increment(Counter.CTL_DEL_SAVED);
        }
        closes.add(h);
    }

    /** A completion handle's close: its owner cancels its ops (their CQEs drop its references). */
    private void cancelOps(Handle h) {
        Runnable cancel = h.registration.onCloseProcessed();
        if (cancel != null) {
            try {
                cancel.run();
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "cancelling the io_uring ops of fd " + h.fd() + " failed", t);
            }
        }
    }
}
