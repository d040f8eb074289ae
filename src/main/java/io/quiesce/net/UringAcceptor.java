package io.quiesce.net;

import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.uring.CompletionHandler;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;

/**
 * The io_uring side of one {@link Listener}, reactor thread only: one multishot
 * {@code IORING_OP_ACCEPT} (accepted sockets non-blocking and close-on-exec) that posts a CQE per
 * connection and is re-armed when a CQE comes without {@code F_MORE}. An EMFILE-class error ends
 * it (or it is cancelled) and the listener backs off on the reactor's timer, without a spin; the
 * back-off's end re-arms it. Like {@link UringStream}, the armed accept holds a reference on the
 * listener's handle, so its close waits for the accept's last CQE before {@code close(fd)}.
 */
final class UringAcceptor implements CompletionHandler, EventHandler {
    private static final int OP_ACCEPT = 5;
    private static final int OP_CANCEL = 3;

    private final Listener listener;
    private final Reactor reactor;
    private TransportRing t;
    private int slot = -1;
    private Handle handle;
    private int opsInFlight;
    private boolean armed;
    private boolean closing;

    UringAcceptor(Listener listener, Reactor reactor) {
        this.listener = listener;
        this.reactor = reactor;
    }

    /** Registers the listening socket (any thread); the accept is armed from the reactor thread. */
    Handle register(int fd) {
        handle = ReactorInternals.registerCompletions(reactor, fd, this, this::closeProcessed, null);
        reactor.execute(this::arm);
        return handle;
    }

    /** Arms the multishot accept unless it is armed, the listener backs off, or it is closing. */
    void arm() {
        if (closing) {
            return; // closed before this ran: no slot taken (onClose, which gives it back, has run)
        }
        if (t == null) {
            t = ReactorInternals.transport(reactor);
            slot = t.register(this);
        }
        if (armed || closing || listener.backingOff || !beginOp()) {
            return;
        }
        t.ring().prepAccept(t.sqe(), handle.fd(), 0, 0, TransportRing.ACCEPT_FLAGS, true, t.token(slot, OP_ACCEPT));
        armed = true;
    }

    private boolean beginOp() {
        if (opsInFlight == 0 && !handle.tryRetain()) {
            return false;
        }
        opsInFlight++;
        return true;
    }

    private void endOp() {
        if (--opsInFlight == 0) {
            handle.release();
        }
    }

    private void cancelAccept() {
        if (armed && beginOp()) {
            t.ring().prepCancel(t.sqe(), t.token(slot, OP_ACCEPT), Ring.CANCEL_ALL, t.token(slot, OP_CANCEL));
            t.countCancel();
        }
    }

    @Override
    public void onCompletion(int op, int res, int flags) {
        boolean more = (flags & Ring.CQE_F_MORE) != 0;
        try {
            if (op != OP_ACCEPT) {
                return; // a cancel's own CQE
            }
            if (!more) {
                armed = false;
            }
            if (res >= 0) {
                if (closing) {
                    listener.closeAccepted(res); // accepted while the listener closes
                } else if (listener.acceptedFromRing(res) && more) {
                    cancelAccept(); // taking it on threw: backing off, as on an EMFILE
                }
            } else if (res != -TransportRing.ECANCELED && !closing) {
                if (listener.acceptFailed(-res) && more) {
                    cancelAccept(); // backing off: no accept may complete until it ends
                }
            }
            if (!more && !closing) {
                arm(); // a no-op while backing off: the back-off's end re-arms
            }
        } finally {
            if (!more) {
                endOp();
            }
        }
    }

    /** The listener's handle is closing: the armed accept is cancelled. */
    private void closeProcessed() {
        closing = true;
        cancelAccept();
    }

    /** The ring failed and is gone: the accept counts as ended, its reference is dropped, nothing re-arms. */
    @Override
    public void ringLost() {
        closing = true;
        armed = false;
        if (opsInFlight > 0) {
            opsInFlight = 0;
            handle.release();
        }
    }

    @Override
    public void onEvent(Handle h, int ready) {
        // never in epoll
    }

    @Override
    public void onClose(Handle h, Throwable cause) {
        if (t != null) {
            t.unregister(slot);
        }
    }
}
