package io.quiesce.reactor;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * The reference-counted owner of one fd registered with one {@link Reactor}.
 *
 * <p><b>State.</b> State and reference count live in one {@code int} changed by CAS: OPEN with a
 * count of at least one (the owner's reference), then CLOSING, then CLOSED; never back
 * (STYLE habit 6).
 *
 * <p><b>References.</b> A thread other than the reactor that makes a syscall on {@link #fd()}
 * holds a reference for the duration of the call: {@code if (h.tryRetain()) try { ... } finally
 * { h.release(); }}. {@code tryRetain} fails once the handle is closing, so no call can start on
 * an fd that is about to be released.
 *
 * <p><b>Close protocol</b> ({@code safe-delete-with-eventfd.txt}). {@link #close()} moves OPEN to
 * CLOSING and drops the owner's reference. On its reactor the fd is then removed from epoll
 * ({@code EPOLL_CTL_DEL}: a dup of the fd elsewhere would keep the registration alive) and its
 * slot marked dead, so events already fetched for it in the current batch are skipped. The fd is
 * released between batches, never while a handler runs (the quiescence barrier), once the count
 * is zero: {@code close(fd)} is called exactly once, {@link EventHandler#onClose} runs, and the
 * close future completes. After that no handler runs for this handle and the fd number may be
 * reused safely. Every close completes: chained from an {@code onClose}, at shutdown, and when the
 * reactor's loop fails (then with a {@link ClosedHandleException} as the cause). If the reactor
 * has already stopped when the last reference is dropped, the dropping thread releases the fd
 * and completes the future, but {@code onClose} does not run: callbacks run on the reactor
 * thread only.
 *
 * <p><b>Threads.</b> {@link #close()}, {@link #closeAsync()}, {@link #close(Duration)},
 * {@link #tryRetain()}, {@link #release()}, {@link #interest(int)} and {@link #rearm()} may be
 * called from any thread. {@code close(Duration)} blocks and so is refused on any reactor thread.
 */
public final class Handle extends RefCounted {
    /** How long {@link #close(Duration)} spins before it parks (a slow reactor wake-up on a busy VM). */
    private static final long CLOSE_SPIN_NANOS = 50_000;

    private final Reactor reactor;
    private final int fd;
    private final EventHandler handler;
    private final boolean exclusiveFd;
    /**
     * Told, on whichever thread, when the fd was released without {@code onClose} (the reactor had
     * exited); null for a user's handle. The net layer counts such a close so its gauge cannot drift.
     */
    private final Runnable releasedWithoutOnClose;
    private final CompletableFuture<Void> closeFuture = new CompletableFuture<>();
    private volatile Object attachment;

    /** The reactor's record of this handle; reactor thread only. */
    final Registration registration;
    /**
     * Why the handle was closed (a handler's exception), for {@link EventHandler#onClose}. Written
     * once, by the thread whose {@link #beginClose()} won, before it hands the close to the
     * reactor; the hand-off (task queue or orphan queue) publishes it.
     */
    Throwable closeCause;
    long closeRequestedNanos;

    Handle(Reactor reactor, int fd, int interest, EventHandler handler, boolean exclusiveFd,
            Runnable releasedWithoutOnClose) {
        this(reactor, fd, handler, exclusiveFd, new Registration(reactor, interest), releasedWithoutOnClose);
    }

    Handle(Reactor reactor, int fd, EventHandler handler, boolean exclusiveFd, Registration registration,
            Runnable releasedWithoutOnClose) {
        this.reactor = reactor;
        this.fd = fd;
        this.handler = handler;
        this.registration = registration;
        this.exclusiveFd = exclusiveFd;
        this.releasedWithoutOnClose = releasedWithoutOnClose;
    }

    /** {@return the fd; only meaningful while a reference is held or on the reactor thread while open} */
    public int fd() {
        return fd;
    }

    /** {@return the reactor that owns this handle for its whole life} */
    public Reactor reactor() {
        return reactor;
    }

    EventHandler handler() {
        return handler;
    }

    /** {@return what to tell when the fd is released without {@code onClose}, or null} */
    Runnable releasedWithoutOnClose() {
        return releasedWithoutOnClose;
    }

    /**
     * {@return whether the fd was created by Quiesce and never handed out}: no {@code dup} of it
     * can exist, so closing the fd alone removes it from epoll and the explicit DEL is skipped.
     */
    boolean exclusiveFd() {
        return exclusiveFd;
    }

    /** {@return the user's attachment, or null} */
    public Object attachment() {
        return attachment;
    }

    /**
     * Sets the user's attachment.
     *
     * @param value anything, or null
     */
    public void attach(Object value) {
        this.attachment = value;
    }

    /**
     * Starts closing the handle (idempotent) and returns at once; on the reactor thread it never
     * blocks. The fd is released once the reactor has quiesced and every reference is dropped.
     */
    public void close() {
        closeWith(null);
    }

    /**
     * Same as {@link #close()}.
     *
     * @return a future that completes when the fd has been released and no handler can run for
     *         this handle any more
     */
    public CompletableFuture<Void> closeAsync() {
        closeWith(null);
        return closeFuture;
    }

    /**
     * Closes and waits until the fd has been released. Not on the reactor thread.
     *
     * @param timeout how long to wait at most
     * @throws TimeoutException if the close did not complete in time (it still completes later)
     * @throws InterruptedException if interrupted while waiting
     * @throws IllegalStateException if called on the reactor's own thread (it would deadlock)
     */
    public void close(Duration timeout) throws TimeoutException, InterruptedException {
        if (Reactor.current() != null) {
            // On its own reactor it would deadlock; on another reactor it would stall that loop
            // (and two reactors closing each other's handles this way would deadlock).
            throw new IllegalStateException("a blocking close on a reactor thread would stall it (and deadlock on its own reactor); use close() or closeAsync()");
        }
        closeWith(null);
        // A close usually completes within one reactor wake-up (tens of microseconds): spin that
        // long before parking, so the caller is not also charged a futex wake-up of its own.
        long spinUntil = System.nanoTime() + Math.min(CLOSE_SPIN_NANOS, timeout.toNanos());
        while (!closeFuture.isDone() && System.nanoTime() - spinUntil < 0) {
            Thread.onSpinWait();
        }
        try {
            closeFuture.get(timeout.toNanos(), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            throw new IllegalStateException("close of fd " + fd + " failed", e.getCause());
        }
    }

    /**
     * {@return the future that completes when this handle's close is done} It is completed on the
     * reactor thread, right after {@link EventHandler#onClose}, so a dependent added with
     * {@code thenRun} and friends runs there too and must not block (the reactor stalls while it
     * does); use the {@code *Async} variants for work that may block. Several dependents run in
     * an order {@code CompletableFuture} leaves unspecified (today the most recently added first):
     * chain them where the order matters.
     */
    public CompletableFuture<Void> closeFuture() {
        return closeFuture;
    }

    /**
     * OPEN → CLOSING, dropping the owner's reference in the same CAS, then hands the close to the
     * reactor; true if this call did it.
     */
    boolean closeWith(Throwable cause) {
        if (!beginClose()) {
            return false;
        }
        closeCause = cause;
        closeRequestedNanos = System.nanoTime();
        reactor.registry.closeRequested(this);
        return true;
    }

    @Override
    void lastReferenceDropped() {
        reactor.registry.lastReferenceDropped(this);
    }

    /**
     * Changes the interest (the {@link Interest} bits; 0 keeps the registration with no events
     * but {@link Interest#HANGUP}/{@link Interest#ERROR}). Applied right before the reactor's next
     * {@code epoll_wait}, coalesced with any other change in the same iteration.
     *
     * @param interest the new interest
     * @throws ClosedHandleException if the handle is closing or closed
     */
    public void interest(int interest) {
        Interest.check(interest);
        requireOpen("interest");
        reactor.changeInterest(this, interest);
    }

    /** {@return the interest last asked for} (reactor thread view) */
    public int interest() {
        return registration.wantedInterest();
    }

    /**
     * Re-enables a {@link Interest#ONESHOT} registration after it fired.
     *
     * @throws ClosedHandleException if the handle is closing or closed
     */
    public void rearm() {
        requireOpen("rearm");
        reactor.changeInterest(this, -1);
    }

    private void requireOpen(String what) {
        if (!isOpen()) {
            throw new ClosedHandleException(what + " on a closed handle (fd " + fd + ")");
        }
    }

    @Override
    public String toString() {
        return "Handle[fd=" + fd + ", " + stateString() + "]";
    }
}
