package io.quiesce.reactor;

/**
 * The reactor's record of one {@link Handle}: where it sits in the handle table, what interest
 * the user wants, what the kernel has, and whether the reactor has done its DEL step. The user's
 * {@code Handle} holds the fd, the state and count and the close future; this holds what only
 * the reactor thread may touch (the split Netty 4.2 makes between a handle and its registration),
 * and every writer asserts that it runs there.
 */
final class Registration {
    /** {@link #kernelEvents} before the ADD and after the DEL. */
    static final int NOT_IN_KERNEL = -1;
    /** {@link #kernelEvents} of a ONESHOT registration that fired: in the kernel, but disabled until a MOD. */
    static final int DISARMED = -2;

    private final Reactor reactor;
    private int slot = -1;
    private int generation;
    private int wantedInterest;
    private int kernelEvents = NOT_IN_KERNEL;
    private boolean dirty;
    private boolean closeProcessed;
    /** Never in epoll: its I/O runs as io_uring ops (the completion transport). Set before publication. */
    private final boolean completionOnly;
    /** Run when the DEL step is done: cancels the handle's ops in flight (completion transport). */
    private final Runnable onCloseProcessed;

    Registration(Reactor reactor, int interest) {
        this(reactor, interest, false, null);
    }

    Registration(Reactor reactor, int interest, boolean completionOnly, Runnable onCloseProcessed) {
        this.reactor = reactor;
        this.wantedInterest = interest; // before the handle is published to the reactor
        this.completionOnly = completionOnly;
        this.onCloseProcessed = onCloseProcessed;
    }

    /** {@return whether the handle is never added to epoll (its I/O is io_uring ops)} */
    boolean completionOnly() {
        return completionOnly;
    }

    /** {@return what cancels the handle's ops in flight when its close is processed, or null} */
    Runnable onCloseProcessed() {
        return onCloseProcessed;
    }

    /** {@return the slot in the handle table, or -1 when not in it} */
    int slot() {
        return slot;
    }

    int generation() {
        return generation;
    }

    /** {@return the {@code epoll_data.u64} token: {@code generation << 32 | slot}, never the fd} */
    long token() {
        return ((long) generation << 32) | (slot & 0xFFFF_FFFFL);
    }

    void placed(int slot, int generation) {
        assert reactor.inReactorThread();
        this.slot = slot;
        this.generation = generation;
    }

    void removedFromTable() {
        assert reactor.inReactorThread();
        this.slot = -1;
    }

    /** {@return the interest the user wants ({@link Interest} bits)} Written on the reactor thread. */
    int wantedInterest() {
        return wantedInterest;
    }

    void want(int interest) {
        assert reactor.inReactorThread();
        this.wantedInterest = interest;
    }

    /** {@return the epoll mask the kernel has, {@link #NOT_IN_KERNEL} or {@link #DISARMED}} */
    int kernelEvents() {
        return kernelEvents;
    }

    void kernelHas(int events) {
        assert reactor.inReactorThread();
        this.kernelEvents = events;
    }

    /** {@return whether a change is pending in the reactor's interest batch} */
    boolean dirty() {
        return dirty;
    }

    void dirty(boolean pending) {
        assert reactor.inReactorThread();
        this.dirty = pending;
    }

    /** {@return whether the reactor has done the DEL step: no event is dispatched from here on} */
    boolean closeProcessed() {
        return closeProcessed;
    }

    void markCloseProcessed() {
        assert reactor.inReactorThread();
        this.closeProcessed = true;
    }
}
