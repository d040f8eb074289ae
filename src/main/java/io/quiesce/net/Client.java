package io.quiesce.net;

import io.quiesce.reactor.Reactor;

import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;

/**
 * Client connect: a non-blocking {@code connect} ({@code EINPROGRESS}) on a reactor, completed by
 * the socket's first writable (or error) edge and its {@code SO_ERROR}, with a timeout on the
 * reactor's timer. The socket is then an ordinary {@link Connection}.
 */
public final class Client {
    /** The timeout of {@link #connect(Reactor, InetSocketAddress, ConnectionHandler)}. */
    public static final Duration DEFAULT_CONNECT_TIMEOUT = Duration.ofSeconds(30);

    private Client() {}

    /**
     * Connects with {@link ConnectionOptions#defaults()} and a 30 second timeout.
     *
     * @param reactor the reactor the connection will live on
     * @param address where to connect
     * @param handler the connection's handler
     * @return a future completed (on the reactor thread, right after {@code onOpen}) with the
     *         connection, or failed with a {@link java.net.ConnectException} (refused),
     *         {@link java.net.NoRouteToHostException}, other {@link java.net.SocketException} or
     *         {@link java.net.SocketTimeoutException}, each a {@link io.quiesce.sys.SyscallFailure}
     *         naming {@code connect} and its errno (e.g. ECONNREFUSED)
     */
    public static CompletableFuture<Connection> connect(Reactor reactor, InetSocketAddress address,
            ConnectionHandler handler) {
        return connect(reactor, address, ConnectionOptions.defaults(), DEFAULT_CONNECT_TIMEOUT, handler);
    }

    /**
     * Connects.
     *
     * @param reactor the reactor the connection will live on
     * @param address where to connect (resolved)
     * @param options socket options and flow control
     * @param timeout how long the connect may take; zero for no limit
     * @param handler the connection's handler
     * @return a future completed with the connection right after {@code onOpen}, or failed
     */
    public static CompletableFuture<Connection> connect(Reactor reactor, InetSocketAddress address,
            ConnectionOptions options, Duration timeout, ConnectionHandler handler) {
        if (reactor == null || address == null || options == null || timeout == null || handler == null) {
            throw new NullPointerException("reactor, address, options, timeout and handler are required");
        }
        if (address.isUnresolved()) {
            throw new IllegalArgumentException("unresolved address: " + address);
        }
        if (timeout.isNegative()) {
            throw new IllegalArgumentException("negative timeout: " + timeout);
        }
        var future = new CompletableFuture<Connection>();
        Runnable start = () -> TcpConnection.connect(NetContext.of(reactor), address, options, timeout, handler, future);
        if (reactor.inReactorThread()) {
            start.run();
        } else {
            try {
                reactor.execute(start);
            } catch (RejectedExecutionException e) {
                future.completeExceptionally(e);
            }
        }
        return future;
    }
}
