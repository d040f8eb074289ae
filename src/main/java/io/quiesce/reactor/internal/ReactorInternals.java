package io.quiesce.reactor.internal;

import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Reactor;

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

    static {
        try {
            var lookup = MethodHandles.privateLookupIn(Reactor.class, MethodHandles.lookup());
            REGISTER_OWNED = lookup.findVirtual(Reactor.class, "registerOwned",
                    MethodType.methodType(Handle.class, int.class, int.class, EventHandler.class));
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
}
