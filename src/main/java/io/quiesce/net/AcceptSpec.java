package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;

import java.net.InetSocketAddress;
import java.util.function.Supplier;

/**
 * What a {@link Listener} needs of its {@link Server}, fixed at bind: where it listens (for its
 * log lines), how many accepts per wake-up, the accepted connections' options, their handlers, and
 * the group to hand connections out to when one listener accepts for all.
 *
 * @param address the bound address
 * @param acceptBatch at most this many {@code accept4} per wake-up
 * @param connection the accepted connections' options
 * @param handlers makes each accepted connection's handler
 * @param handOutTo the group whose reactors take turns with the connections (a shared listener),
 *        or null: each connection stays on the reactor that accepted it
 */
record AcceptSpec(InetSocketAddress address, int acceptBatch, ConnectionOptions connection,
        Supplier<? extends ConnectionHandler> handlers, ReactorGroup handOutTo) {

    /** {@return a new connection's handler} Reactor thread. */
    ConnectionHandler newHandler() {
        ConnectionHandler h = handlers.get();
        if (h == null) {
            throw new NullPointerException("the handler factory returned null");
        }
        return h;
    }
}
