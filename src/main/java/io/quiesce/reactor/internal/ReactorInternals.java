package io.quiesce.reactor.internal;

import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.uring.TransportRing;

import java.util.function.Supplier;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * What the layers above the reactor inside this module may do that a user may not. This package
 * is not exported, so on the module path no user code can reach it. It reaches the reactor's
 * package-private methods through a private lookup (allowed within one module) rather than the
 * reactor calling in here, so the dependency runs one way only.
 */
public final class ReactorInternals {
    private static final MethodHandle REGISTER_OWNED;
    private static final MethodHandle REGISTER_COMPLETIONS;
    private static final MethodHandle TRANSPORT;
    private static final MethodHandle LOCAL;
    private static final MethodHandle ADD;
    private static final MethodHandle INCREMENT;

    static {
        try {
            var lookup = MethodHandles.privateLookupIn(Reactor.class, MethodHandles.lookup());
            REGISTER_OWNED = lookup.findVirtual(Reactor.class, "registerOwned",
                    MethodType.methodType(Handle.class, int.class, int.class, EventHandler.class));
            REGISTER_COMPLETIONS = lookup.findVirtual(Reactor.class, "registerCompletions",
                    MethodType.methodType(Handle.class, int.class, EventHandler.class, Runnable.class));
            TRANSPORT = lookup.findVirtual(Reactor.class, "transport", MethodType.methodType(TransportRing.class));
            LOCAL = lookup.findVirtual(Reactor.class, "local",
                    MethodType.methodType(Object.class, Class.class, Supplier.class));
            // Static final handles called with invokeExact: the JIT inlines them like a direct call,
            // so the per-read and per-write counts cost what they did as public methods.
            ADD = lookup.findVirtual(ReactorStats.class, "add",
                    MethodType.methodType(void.class, ReactorStats.Counter.class, long.class));
            INCREMENT = lookup.findVirtual(ReactorStats.class, "increment",
                    MethodType.methodType(void.class, ReactorStats.Counter.class));
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private ReactorInternals() {}

    /**
     * Registers an fd that Quiesce created and never exposes; its close skips the
     * {@code EPOLL_CTL_DEL} because no dup of it can exist (closing the fd removes it from epoll).
     *
     * @param reactor the owner
     * @param fd the fd, created by Quiesce and never handed out
     * @param interest {@code Interest} bits
     * @param handler called on the reactor thread
     * @return the handle
     */
    public static Handle registerOwned(Reactor reactor, int fd, int interest, EventHandler handler) {
        try {
            return (Handle) REGISTER_OWNED.invokeExact(reactor, fd, interest, handler);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Registers an fd that Quiesce created and never exposes, whose I/O runs as io_uring ops on
     * the reactor's transport ring: never added to epoll; {@code onCloseProcessed} runs on the
     * reactor thread when its close is processed (it cancels the ops in flight), and the fd is
     * closed only once every reference — one held while any op is in flight — is dropped.
     *
     * @param reactor the owner
     * @param fd the fd
     * @param handler its {@code onClose} runs when the fd has been released
     * @param onCloseProcessed cancels the ops in flight
     * @return the handle
     */
    public static Handle registerCompletions(Reactor reactor, int fd, EventHandler handler, Runnable onCloseProcessed) {
        try {
            return (Handle) REGISTER_COMPLETIONS.invokeExact(reactor, fd, handler, onCloseProcessed);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Reactor thread only: {@return the reactor's io_uring transport ring, or null when it does
     * not run the io_uring transport}
     *
     * @param reactor the calling thread's reactor
     */
    public static TransportRing transport(Reactor reactor) {
        try {
            return (TransportRing) TRANSPORT.invokeExact(reactor);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Reactor thread only: the per-reactor object of type {@code key}, made by {@code factory} on
     * first use and closed (if {@link AutoCloseable}) when the reactor stops.
     *
     * @param reactor the calling thread's reactor
     * @param key the object's class, used as its key
     * @param factory makes the object, on this thread
     * @param <T> the object's type
     * @return the object
     * @throws IllegalStateException if called from another thread
     */
    public static <T> T local(Reactor reactor, Class<T> key, Supplier<? extends T> factory) {
        try {
            return key.cast((Object) LOCAL.invokeExact(reactor, (Class<?>) key, (Supplier<?>) factory));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Adds to a reactor counter. <b>Reactor thread only</b>: each counter has that one writer.
     *
     * @param stats the reactor's statistics
     * @param c the counter
     * @param delta the amount
     */
    public static void add(ReactorStats stats, ReactorStats.Counter c, long delta) {
        try {
            ADD.invokeExact(stats, c, delta);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    /**
     * Adds one to a reactor counter. <b>Reactor thread only.</b>
     *
     * @param stats the reactor's statistics
     * @param c the counter
     */
    public static void increment(ReactorStats stats, ReactorStats.Counter c) {
        try {
            INCREMENT.invokeExact(stats, c);
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
