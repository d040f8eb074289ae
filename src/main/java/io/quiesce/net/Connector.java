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
 * A client connect in progress, reactor thread only: the non-blocking {@code connect(2)}, its
 * future and its timer. It lives from the {@code connect} until the socket is writable (the
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

    /** Starts a non-blocking connect; {@code future} gets the connection or why there is none. */
    static void start(NetContext ctx, InetSocketAddress address, ConnectionOptions options, Duration timeout,
            ConnectionHandler handler, CompletableFuture<Connection> future) {
        Syscalls sys = ctx.sys;
        int fd = sys.socket(SockAddr.family(address), Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0);
        if (fd < 0) {
            future.completeExceptionally(Errno.socketException("socket", -1, -fd));
            return;
        }
        int r;
        try {
            NetContext.applySocketOptions(sys, fd, options);
            int len = SockAddr.encode(address, ctx.sockAddr);
            r = sys.connect(fd, ctx.sockAddr, len);
            if (r < 0 && r != -Errno.EINPROGRESS && r != -Errno.EINTR) {
                throw Errno.socketException("connect", fd, -r);
            }
        } catch (IOException | RuntimeException e) {
            sys.close(fd);
            future.completeExceptionally(e);
            return;
        }
        TcpConnection c;
        try {
            c = new TcpConnection(ctx, fd, options, handler);
        } catch (ClosedHandleException e) {
            sys.close(fd);
            future.completeExceptionally(e);
            return;
        }
        var k = new Connector(c, address, timeout, future);
        c.connector = k;
        c.outgoing = true;
        if (r == 0) { // loopback can connect at once
            k.established();
            return;
        }
        if (c.uring != null) {
            c.uring.pollConnect(); // io_uring: the socket is not in epoll; a poll says when it is writable
        }
        if (timeout.isPositive()) {
            k.timer = ctx.reactor.schedule(timeout.toNanos(), TimeUnit.NANOSECONDS, k);
        }
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
