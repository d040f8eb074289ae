package io.quiesce.net;

import io.quiesce.reactor.ClosedHandleException;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

/**
 * A client connect in progress, reactor thread only: the non-blocking {@code connect(2)} (or
 * the io_uring transport's {@code CONNECT} SQE), its future and its timer. It lives from the {@code connect} until the socket is writable (the
 * kernel's signal that the handshake ended, {@code SO_ERROR} saying how) or the connection closes;
 * an accepted connection never has one.
 *
 * <p>The object is itself the connect timer's task ({@link #run}).
 */
final class Connector implements Runnable {
    private final TcpConnection c;
    private final InetSocketAddress address;
    private final Duration timeout;
    private final CompletableFuture<Connection> future;
    private ScheduledTask timer;

    private Connector(TcpConnection c, InetSocketAddress address, Duration timeout, CompletableFuture<Connection> future) {
        this.c = c;
        this.address = address;
        this.timeout = timeout;
        this.future = future;
    }

    /**
     * Starts a non-blocking connect; {@code future} gets the connection or why there is none. On
     * the io_uring transport it is an {@code IORING_OP_CONNECT} SQE where the kernel has it
     * ({@link UringStream#submitConnect}), else {@code connect(2)} and a poll for writability.
     *
     * @return the connection being connected (tests look at it), or null if none was made
     */
    static TcpConnection start(NetContext ctx, InetSocketAddress address, ConnectionOptions options, Duration timeout,
            ConnectionHandler handler, CompletableFuture<Connection> future) {
        Syscalls sys = ctx.sys;
        int fd = sys.socket(SockAddr.family(address), Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0);
        if (fd < 0) {
            future.completeExceptionally(Errno.socketException("socket", -1, -fd));
            return null;
        }
        boolean byRing = UringStream.connectsByRing(ctx);
        int r = -Errno.EINPROGRESS;
        try {
            NetContext.applySocketOptions(sys, fd, options);
            if (!byRing) {
                int len = SockAddr.encode(address, ctx.sockAddr);
                r = sys.connect(fd, ctx.sockAddr, len);
                if (r < 0 && r != -Errno.EINPROGRESS && r != -Errno.EINTR) {
                    throw Errno.socketException("connect", fd, -r);
                }
            }
        } catch (IOException | RuntimeException e) {
            sys.close(fd);
            future.completeExceptionally(e);
            return null;
        }
        TcpConnection c;
        try {
            c = new TcpConnection(ctx, fd, options, handler);
        } catch (ClosedHandleException e) {
            sys.close(fd);
            future.completeExceptionally(e);
            return null;
        }
        var k = new Connector(c, address, timeout, future);
        c.connector = k;
        c.outgoing = true;
        if (r == 0) { // loopback can connect at once
            k.established();
            return c;
        }
        if (byRing) {
            c.uring.submitConnect(address);
        } else if (c.uring != null) {
            c.uring.pollConnect(); // io_uring: the socket is not in epoll; a poll says when it is writable
        }
        if (timeout.isPositive()) {
            k.timer = ctx.reactor.schedule(timeout.toNanos(), TimeUnit.NANOSECONDS, k);
        }
        return c;
    }

    /**
     * An event while connecting.
     *
     * @return whether the connection is now open and the event goes on to the read and write paths
     */
    boolean onEvent(int ready) {
        if ((ready & (Interest.WRITE | Interest.ERROR | Interest.HANGUP)) == 0) {
            return false;
        }
        int err = c.sys.getsockoptInt(c.fd, Syscalls.SOL_SOCKET, Syscalls.SO_ERROR);
        if (err != 0) {
            c.fail(err < 0 ? Errno.socketException("getsockopt(SO_ERROR)", c.fd, -err)
                    : Errno.socketException("connect", c.fd, err));
            return false;
        }
        established();
        return !c.isClosed();
    }

    /**
     * io_uring: the {@code CONNECT} SQE completed with {@code res}: 0 (connected) or
     * {@code -errno}, mapped as the {@code SO_ERROR} of the epoll path is.
     */
    void onConnectCompleted(int res) {
        if (res == 0) {
            established();
        } else {
            c.fail(Errno.socketException("connect", c.fd, -res));
        }
    }

    /** The handshake is done: the connection opens, then the future completes. */
    private void established() {
        c.connector = null;
        TcpConnection.cancel(timer);
        timer = null;
        c.open();
        Throwable failedInOnOpen = c.isClosed() ? c.closeCause() : null;
        if (failedInOnOpen != null) {
            future.completeExceptionally(failedInOnOpen);
        } else if (!future.complete(c)) {
            c.abortNow(); // the caller cancelled (or timed out) the connect: nobody will use this connection
        }
    }

    /** The connect timer. */
    @Override
    public void run() {
        if (c.connector == this && !c.isClosed()) {
            c.fail(Errno.timedOut("connect", c.fd, "no connection to " + address + " within " + timeout));
        }
    }

    /** The connection closed before it opened: the future fails with {@code why}. */
    void closedBeforeOpen(Throwable why) {
        TcpConnection.cancel(timer);
        future.completeExceptionally(why != null ? why
                : new ClosedHandleException("closed before the connection was established"));
        c.connector = null;
    }
}
