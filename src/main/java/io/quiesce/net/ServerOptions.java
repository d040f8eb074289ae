package io.quiesce.net;

import io.quiesce.sys.raw.Syscalls;

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
 * @param sharedPort whether other servers may listen on the same port (default {@code false}).
 *        Off, a bind to a port another socket listens on fails with a
 *        {@link java.net.BindException}, and connections go only to this server's own sockets
 *        (a classic BPF program on the kernel's reuseport group; without it the kernel would let
 *        any program of the same user that sets {@code SO_REUSEPORT} take a share). On, every
 *        listening socket sets {@code SO_REUSEPORT} before binding, so servers of the same user
 *        that all opted in (in one process or several, e.g. during a rolling restart) share the
 *        port and the kernel spreads connections over all of them. A server that opts in cannot
 *        take connections from one that did not: it binds, but the other's program never picks
 *        it. Sharing a port between users is never possible (a kernel rule).
 */
public record ServerOptions(int backlog, boolean sharedListener, int acceptBatch, ConnectionOptions connection,
        boolean sharedPort) {
    /** Checks the values. */
    public ServerOptions {
        if (backlog < 1 || acceptBatch < 1) {
            throw new IllegalArgumentException("backlog and acceptBatch must be >= 1: " + backlog + ", " + acceptBatch);
        }
        if (connection == null) {
            throw new NullPointerException("connection");
        }
    }

    /**
     * Options with the port not shared ({@code sharedPort} false).
     *
     * @param backlog the {@code listen} backlog
     * @param sharedListener one listening socket for all reactors
     * @param acceptBatch at most this many {@code accept4} per wake-up
     * @param connection options of the accepted connections
     */
    public ServerOptions(int backlog, boolean sharedListener, int acceptBatch, ConnectionOptions connection) {
        this(backlog, sharedListener, acceptBatch, connection, false);
    }

    /** {@return the defaults described on the record} */
    public static ServerOptions defaults() {
        return new ServerOptions(Syscalls.SOMAXCONN, false, 64, ConnectionOptions.defaults(), false);
    }

    /**
     * {@return a copy with this backlog}
     *
     * @param n the backlog
     */
    public ServerOptions withBacklog(int n) {
        return new ServerOptions(n, sharedListener, acceptBatch, connection, sharedPort);
    }

    /**
     * {@return a copy with one shared listener or one per reactor}
     *
     * @param shared true for one
     */
    public ServerOptions withSharedListener(boolean shared) {
        return new ServerOptions(backlog, shared, acceptBatch, connection, sharedPort);
    }

    /**
     * {@return a copy with this accept batch}
     *
     * @param n accepts per wake-up
     */
    public ServerOptions withAcceptBatch(int n) {
        return new ServerOptions(backlog, sharedListener, n, connection, sharedPort);
    }

    /**
     * {@return a copy with these connection options}
     *
     * @param options the options
     */
    public ServerOptions withConnection(ConnectionOptions options) {
        return new ServerOptions(backlog, sharedListener, acceptBatch, options, sharedPort);
    }

    /**
     * {@return a copy with the port shared with other servers that opt in, or kept exclusive}
     *
     * @param shared true to share (see {@link #sharedPort()})
     */
    public ServerOptions withSharedPort(boolean shared) {
        return new ServerOptions(backlog, sharedListener, acceptBatch, connection, shared);
    }
}
