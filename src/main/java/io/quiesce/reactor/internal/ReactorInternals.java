package io.quiesce.reactor.internal;

import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Reactor;
import io.quiesce.uring.TransportRing;

import java.util.function.Supplier;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.MethodType;

/**
 * What the layers above the reactor inside this module may do that a user may not. This package
 * is not exported, so on the module path no user code can reach it. It reaches the reactor
 * package's package-private {@code ReactorHooks} through a private lookup (allowed within one module) rather than the
 * reactor calling in here, so the dependency runs one way only.
 */
public final class ReactorInternals {
    private static final MethodHandle REGISTER_OWNED;
    private static final MethodHandle REGISTER_COMPLETIONS;
    private static final MethodHandle TRANSPORT;
    private static final MethodHandle LOCAL;
    private static final MethodHandle SHARED;

    static {
        try {
            // ReactorHooks is package-private: a private lookup in its package can name it.
            var lookup = MethodHandles.privateLookupIn(Reactor.class, MethodHandles.lookup());
            Class<?> hooks = lookup.findClass("io.quiesce.reactor.ReactorHooks");
            REGISTER_OWNED = lookup.findStatic(hooks, "registerOwned",
                    MethodType.methodType(Handle.class, Reactor.class, int.class, int.class, EventHandler.class, Runnable.class));
            REGISTER_COMPLETIONS = lookup.findStatic(hooks, "registerCompletions",
                    MethodType.methodType(Handle.class, Reactor.class, int.class, EventHandler.class, Runnable.class, Runnable.class));
            TRANSPORT = lookup.findStatic(hooks, "transport", MethodType.methodType(TransportRing.class, Reactor.class));
            LOCAL = lookup.findStatic(hooks, "local",
                    MethodType.methodType(Object.class, Reactor.class, Class.class, Supplier.class));
            SHARED = lookup.findStatic(hooks, "shared",
                    MethodType.methodType(Object.class, Reactor.class, Class.class, Supplier.class));
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
     * @param releasedWithoutOnClose run on the releasing thread if the fd is released after the
     *        reactor exited, when {@code onClose} can no longer run; or null
     * @return the handle
     */
    public static Handle registerOwned(Reactor reactor, int fd, int interest, EventHandler handler,
            Runnable releasedWithoutOnClose) {
        try {
            return (Handle) REGISTER_OWNED.invokeExact(reactor, fd, interest, handler, releasedWithoutOnClose);
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
     * @param releasedWithoutOnClose run if the fd is released after the reactor exited (may be null)
     * @return the handle
     */
    public static Handle registerCompletions(Reactor reactor, int fd, EventHandler handler, Runnable onCloseProcessed,
                                             Runnable releasedWithoutOnClose) {
        try {
            return (Handle) REGISTER_COMPLETIONS.invokeExact(reactor, fd, handler, onCloseProcessed, releasedWithoutOnClose);
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
     * Any thread: the per-reactor object of type {@code key} that other threads read too, made by
     * {@code factory} once and never closed.
     *
     * @param reactor the owner
     * @param key the object's class, used as its key
     * @param factory makes the object, on whichever thread asks first
     * @param <T> the object's type
     * @return the object
     */
    public static <T> T shared(Reactor reactor, Class<T> key, Supplier<? extends T> factory) {
        try {
            return key.cast((Object) SHARED.invokeExact(reactor, (Class<?>) key, (Supplier<?>) factory));
        } catch (RuntimeException | Error e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
}
