package io.quiesce.net;

import io.quiesce.reactor.ClosedHandleException;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Supplier;

/**
 * A TCP server on a {@link ReactorGroup}. By default every reactor owns its own listening socket,
 * bound with {@code SO_REUSEPORT} to the same address, and accepts its own connections: the kernel
 * spreads them, and a connection lives on the reactor that accepted it. With
 * {@link ServerOptions#sharedListener()} one socket on reactor 0 accepts for all and hands
 * connections out round robin.
 *
 * <p>The port is the server's alone: a bind to a port another socket listens on (another server
 * in this process or any other, a JDK {@code ServerSocket}) fails with a
 * {@link java.net.BindException}, and the kernel gives this server's connections to its own
 * sockets only, unless every party opts in with {@link ServerOptions#withSharedPort(boolean)}. A
 * restart right after a close is not refused by the closed server's {@code TIME_WAIT}
 * connections ({@code SO_REUSEADDR}).
 *
 * <pre>{@code
 * try (var group = ReactorGroup.start();
 *      var server = Server.bind(group, new InetSocketAddress("127.0.0.1", 7007), () -> handler)) {
 *     ...
 * }
 * }</pre>
 *
 * <p>Accepted sockets are non-blocking and close-on-exec ({@code accept4}), registered once,
 * edge-triggered, and inherit their socket options from the listening socket.
 * {@link #close()} stops accepting; connections already open stay open until they or the group
 * close.
 */
public final class Server implements AutoCloseable {
    private final ReactorGroup group;
    private final ServerOptions options;
    private final InetSocketAddress localAddress;
    final List<Listener> listeners = new ArrayList<>();

    private Server(ReactorGroup group, ServerOptions options, InetSocketAddress localAddress) {
        this.group = group;
        this.options = options;
        this.localAddress = localAddress;
    }

    /**
     * Binds with {@link ServerOptions#defaults()}.
     *
     * @param group the reactors that serve the connections
     * @param address where to listen (port 0: any free port, see {@link #port()})
     * @param handlers called once per accepted connection, on its reactor thread, for its handler
     *        (return a shared instance for a stateless handler)
     * @return the listening server
     * @throws java.net.BindException if another socket listens on the port (see
     *         {@link ServerOptions#sharedPort()})
     * @throws IOException if a listening socket cannot be made for another reason: the
     *         {@code java.net} exception of the failed call, a {@link io.quiesce.sys.SyscallFailure}
     */
    public static Server bind(ReactorGroup group, InetSocketAddress address,
            Supplier<? extends ConnectionHandler> handlers) throws IOException {
        return bind(group, address, ServerOptions.defaults(), handlers);
    }

    /**
     * Binds and starts accepting.
     *
     * @param group the reactors that serve the connections
     * @param address where to listen (port 0: any free port, see {@link #port()})
     * @param options backlog, listener layout, accept batch and connection options
     * @param handlers called once per accepted connection, on its reactor thread, for its handler
     * @return the listening server
     * @throws java.net.BindException if another socket listens on the port and the port is not
     *         shared ({@link ServerOptions#sharedPort()}), or the address cannot be had
     *         (EADDRNOTAVAIL, EACCES); none is left open
     * @throws IOException if a listening socket cannot be made for another reason: the
     *         {@code java.net} exception of the failed call, a {@link io.quiesce.sys.SyscallFailure};
     *         none is left open
     */
    public static Server bind(ReactorGroup group, InetSocketAddress address, ServerOptions options,
            Supplier<? extends ConnectionHandler> handlers) throws IOException {
        if (group == null || address == null || options == null || handlers == null) {
            throw new NullPointerException("group, address, options and handlers are required");
        }
        if (group.isClosed()) {
            throw new ClosedHandleException("the reactor group is closed");
        }
        int count = options.sharedListener() ? 1 : group.size();
        ListenSockets.Bound b = ListenSockets.open(address, count, options);
        int[] fds = b.fds();
        InetSocketAddress bound = b.address();
        Syscalls sys = Syscalls.current();
        Server server = new Server(group, options, bound);
        var spec = new AcceptSpec(bound, options.acceptBatch(), options.connection(), handlers,
                options.sharedListener() ? group : null);
        var backoffLogged = new AtomicBoolean();
        int registered = 0;
        try {
            for (int i = 0; i < count; i++) {
                Listener l = new Listener(spec, group.reactor(i), backoffLogged);
                l.register(fds[i]);
                server.listeners.add(l);
                registered++;
            }
        } catch (ClosedHandleException e) {
            for (int i = registered; i < count; i++) {
                sys.close(fds[i]);
            }
            server.close();
            throw e;
        }
        return server;
    }

    /** {@return the address the server listens on (with the real port if 0 was asked)} */
    public InetSocketAddress localAddress() {
        return localAddress;
    }

    /** {@return the port the server listens on} */
    public int port() {
        return localAddress.getPort();
    }

    /** {@return the options} */
    public ServerOptions options() {
        return options;
    }

    /** {@return the group whose reactors serve this server's connections} */
    public ReactorGroup group() {
        return group;
    }

    /** {@return the number of listening sockets: one per reactor, or one if shared} */
    public int listeners() {
        return listeners.size();
    }

    /** {@return the accept counters, summed over the listening sockets; any thread} */
    public ServerStats stats() {
        long accepted = 0;
        long exhaustion = 0;
        long errors = 0;
        int backingOff = 0;
        for (Listener l : listeners) {
            long exhausted = l.counts.get(NetStats.Counter.ACCEPT_BACKOFFS_EXHAUSTED);
            accepted += l.counts.get(NetStats.Counter.ACCEPTS);
            exhaustion += exhausted;
            errors += l.counts.get(NetStats.Counter.ACCEPT_BACKOFFS) - exhausted;
            backingOff += l.backingOff ? 1 : 0;
        }
        return new ServerStats(accepted, exhaustion, errors, backingOff);
    }

    /**
     * Stops accepting: closes every listening socket. Open connections are not affected.
     *
     * @return a future completed when every listening fd has been released
     */
    public CompletableFuture<Void> closeAsync() {
        return CompletableFuture.allOf(listeners.stream().map(Listener::handle).map(Handle::closeAsync)
                .toArray(CompletableFuture[]::new));
    }

    /** Stops accepting, returning at once ({@link #closeAsync()} tells when it is done). */
    @Override
    public void close() {
        closeAsync();
    }

    @Override
    public String toString() {
        return "Server[" + localAddress + ", " + listeners.size() + " listener(s)]";
    }

}
