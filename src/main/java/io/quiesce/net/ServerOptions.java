package io.quiesce.net;

import io.quiesce.sys.Syscalls;

/**
 * How a {@link Server} listens.
 *
 * @param backlog the {@code listen} backlog (default {@code SOMAXCONN})
 * @param sharedListener one listening socket on reactor 0 handing connections round robin to all
 *        reactors, instead of the default: one {@code SO_REUSEPORT} socket per reactor, where the
 *        kernel spreads connections and every reactor accepts its own
 * @param acceptBatch at most this many {@code accept4} per wake-up, so a connection storm cannot
 *        starve the connections already open (default 64)
 * @param connection options of the accepted connections; socket options are set once on the
 *        listening socket, which accepted sockets inherit (no {@code setsockopt} per connection)
 */
public record ServerOptions(int backlog, boolean sharedListener, int acceptBatch, ConnectionOptions connection) {
    /** Checks the values. */
    public ServerOptions {
        if (backlog < 1 || acceptBatch < 1) {
            throw new IllegalArgumentException("backlog and acceptBatch must be >= 1: " + backlog + ", " + acceptBatch);
        }
        if (connection == null) {
            throw new NullPointerException("connection");
        }
    }

    /** {@return the defaults described on the record} */
    public static ServerOptions defaults() {
        return new ServerOptions(Syscalls.SOMAXCONN, false, 64, ConnectionOptions.defaults());
    }

    /**
     * {@return a copy with this backlog}
     *
     * @param n the backlog
     */
    public ServerOptions withBacklog(int n) {
        return new ServerOptions(n, sharedListener, acceptBatch, connection);
    }

    /**
     * {@return a copy with one shared listener or one per reactor}
     *
     * @param shared true for one
     */
    public ServerOptions withSharedListener(boolean shared) {
        return new ServerOptions(backlog, shared, acceptBatch, connection);
    }

    /**
     * {@return a copy with this accept batch}
     *
     * @param n accepts per wake-up
     */
    public ServerOptions withAcceptBatch(int n) {
        return new ServerOptions(backlog, sharedListener, n, connection);
    }

    /**
     * {@return a copy with these connection options}
     *
     * @param options the options
     */
    public ServerOptions withConnection(ConnectionOptions options) {
        return new ServerOptions(backlog, sharedListener, acceptBatch, options);
    }
}
