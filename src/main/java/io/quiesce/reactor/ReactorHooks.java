package io.quiesce.reactor;

import io.quiesce.uring.TransportRing;

import java.util.function.Supplier;

/**
 * What the layers above the reactor (the net layer) may do with a reactor that a user may not:
 * register the fds Quiesce made itself, reach the io_uring transport ring, keep per-reactor
 * objects. Package-private; {@code io.quiesce.reactor.internal.ReactorInternals} reaches these
 * static methods through a private lookup, so the dependency runs one way only.
 */
final class ReactorHooks {
    private ReactorHooks() {}

    /**
     * Registers an fd that Quiesce itself created and never exposes (the net layer's sockets):
     * no {@code dup} of it can exist, so its close skips the explicit {@code EPOLL_CTL_DEL}
     * (closing the fd removes it from epoll). Not public: a caller's own fd may always have been
     * dup'd. Reached from the net layer through {@code io.quiesce.reactor.internal}.
     * {@code releasedWithoutOnClose} (may be null) is run, on the releasing thread, if the fd is
     * released after this reactor exited, when no {@code onClose} can run.
     */
    static Handle registerOwned(Reactor reactor, int fd, int interest, EventHandler handler, Runnable releasedWithoutOnClose) {
        return reactor.registry.register(fd, interest, handler, true, releasedWithoutOnClose);
    }

    /**
     * Registers an fd Quiesce created and never exposes whose I/O runs as io_uring ops on this
     * reactor's {@linkplain #transport(Reactor) transport ring}: it is in the handle table (so shutdown
     * closes it) but never in epoll. When its close is processed {@code onCloseProcessed} runs on
     * this thread (it cancels the ops in flight); the fd is released once every reference is
     * dropped — the owner holds one while any op is in flight, so {@code close(fd)} waits for
     * every CQE. Reached from the net layer through {@code io.quiesce.reactor.internal}.
     */
    static Handle registerCompletions(Reactor reactor, int fd, EventHandler handler, Runnable onCloseProcessed,
                                      Runnable releasedWithoutOnClose) {
        return reactor.registry.registerCompletions(fd, handler, onCloseProcessed, releasedWithoutOnClose);
    }

    /** {@return the io_uring transport ring, or null unless this reactor runs {@link ReactorGroup.Io#URING}} Reactor thread. */
    static TransportRing transport(Reactor reactor) {
        return reactor.wait == null ? null : reactor.wait.transport();
    }

    /**
     * Reactor thread only: the per-reactor object of type {@code key}, made by {@code factory} on
     * first use. This is where a layer above (through {@code ReactorInternals}) keeps what belongs to one reactor (the net layer's
     * read buffer and write-buffer pool, in a confined arena made on this thread); it is looked
     * up once per connection, not per event. An object that is {@link AutoCloseable} is closed
     * on this thread when the reactor stops, after its last handle has been closed.
     *
     * @param reactor the reactor
     * @param key the object's class, used as its key
     * @param factory makes the object, on this thread
     * @param <T> the object's type
     * @return the object
     * @throws IllegalStateException if called from another thread
     */
    static <T> T local(Reactor reactor, Class<T> key, Supplier<? extends T> factory) {
        if (!reactor.inReactorThread()) {
            throw new IllegalStateException("Reactor.local is for reactor " + reactor.index() + "'s own thread");
        }
        return reactor.locals.get(key, factory);
    }

    /**
     * Any thread: the per-reactor object of type {@code key} that other threads read too (the net
     * layer's counters), made by {@code factory} once. Never closed. Reached through
     * {@code ReactorInternals}.
     */
    static <T> T shared(Reactor reactor, Class<T> key, Supplier<? extends T> factory) {
        return reactor.locals.shared(key, factory);
    }
}
