package io.quiesce.net;

import io.quiesce.reactor.ClosedHandleException;
import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.InetSocketAddress;
import java.net.SocketException;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.RejectedExecutionException;

import static io.quiesce.net.ConnectionState.*;

/**
 * The one {@link Connection}: a socket registered once, edge-triggered, for
 * {@code IN|OUT|RDHUP|PRI}, whose epoll interest never changes again. This class is the connection's
 * state machine and its callback passes; the three paths have homes of their own:
 * {@link Connector} (a client connect in progress), {@link ReadPath} (reads, pause, budget) and
 * {@link OutboundQueue} (the write queue, the foreign inbox and its door, watermarks, sending).
 *
 * <p><b>Write.</b> Writes on the reactor thread are copied into the chunk queue; inside this
 * connection's own callbacks they are sent once when the callback pass ends, elsewhere from one
 * task per burst. Writes from other threads are copied to the heap, put in an inbox and moved to
 * the chunk queue by that task.
 *
 * <p><b>Close.</b> Through the handle's close protocol. The socket was made by Quiesce and never
 * handed out, so it is registered as owned and its close skips {@code EPOLL_CTL_DEL}.
 *
 * <p><b>io_uring.</b> On a reactor running the io_uring transport the socket is never in epoll:
 * {@link UringStream} receives (multishot, into provided buffers), sends and cancels through
 * SQEs, and this class runs the same callback passes on their completions.
 */
final class TcpConnection implements Connection, EventHandler {
    private static final System.Logger LOG = System.getLogger(TcpConnection.class.getName());
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(TcpConnection.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Read, write, peer closed, and urgent data: the read path must know a read may stop at its mark. */
    static final int SOCKET_INTEREST = Interest.SOCKET_DEFAULT | Syscalls.EPOLLPRI;

    final NetContext ctx;
    final Reactor reactor;
    final Syscalls sys;
    final int fd;
    final ConnectionOptions options;
    final ConnectionHandler handler;
    private final OutboundQueue outbound;
    private final ReadPath reads;
    private final Handle handle;
    /** The io_uring side, or null on an epoll reactor. */
    final UringStream uring;
    /** io_uring: the bytes of the receive being handed to {@code onRead}. */
    private MemorySegment uringData;

    // ---- any thread ----
    /**
     * The lifecycle ({@link ConnectionState}), forward only, changed by the reactor thread alone
     * with a release store ({@link #advance}); other threads read it with acquire ({@link #write},
     * {@link #isWritable()}, {@link #isOpen()}). The reactor thread reads its own writes plainly.
     */
    private int state;
    private volatile InetSocketAddress remote;
    private volatile InetSocketAddress local;

    // ---- reactor thread only ----
    /** The client connect in progress; null once open, and always for an accepted connection. */
    Connector connector;
    /** Made by {@code connect} rather than accepted: counted apart in the metrics. */
    boolean outgoing;
    private boolean inCallbacks;
    private boolean flushAtEnd;
    private Throwable closeCause;

    /** Registers {@code fd} on the context's reactor; the caller still owns the fd if this throws. */
    TcpConnection(NetContext ctx, int fd, ConnectionOptions options, ConnectionHandler handler) {
        this.ctx = ctx;
        this.reactor = ctx.reactor;
        this.sys = ctx.sys;
        this.fd = fd;
        this.options = options;
        this.handler = handler;
        this.outbound = new OutboundQueue(this);
        this.reads = new ReadPath(this);
        if (ctx.transport != null) {
            this.uring = new UringStream(this, ctx);
            Handle h;
            try {
                h = ReactorInternals.registerCompletions(reactor, fd, this, uring::closeProcessed,
                        this::releasedWithoutOnClose);
            } catch (RuntimeException e) {
                uring.released();
                throw e;
            }
            this.handle = h;
        } else {
            this.uring = null;
            this.handle = ReactorInternals.registerOwned(reactor, fd, SOCKET_INTEREST, this, this::releasedWithoutOnClose);
        }
    }


    /**
     * Takes an accepted socket: registers it and calls {@code onOpen}. Reactor thread only. If the
     * registration fails the fd is closed here: quietly when the reactor is shutting down, else
     * before the exception goes on to the listener (which backs off).
     */
    static void accepted(NetContext ctx, int fd, ConnectionOptions options, ConnectionHandler handler) {
        TcpConnection c;
        try {
            c = new TcpConnection(ctx, fd, options, handler);
        } catch (ClosedHandleException e) {
            ctx.sys.close(fd);
            return;
        } catch (RuntimeException | Error e) {
            ctx.sys.close(fd); // nothing owns it: no handle was made
            throw e;
        }
        c.open();
    }

    /** Starts a non-blocking connect ({@link Connector}). Reactor thread only. */
    static void connect(NetContext ctx, InetSocketAddress address, ConnectionOptions options, Duration timeout,
            ConnectionHandler handler, CompletableFuture<Connection> future) {
        Connector.start(ctx, address, options, timeout, handler, future);
    }

    // ------------------------------------------------------------------ reactor thread: events

    void open() {
        advance(OPENED);
        ctx.stats.increment(outgoing ? NetStats.Counter.OUTGOING_OPENED : NetStats.Counter.ACCEPTED_OPENED);
        long now = System.nanoTime();
        reads.start(now);
        outbound.start(now);
        callbackPass(OPEN_PASS, 0);
        if (uring != null && !is(CLOSED)) {
            uring.armRecv(); // not if onOpen paused reading
        }
    }

    /** One step run as a callback pass; non-capturing, so passing one allocates nothing. */
    @FunctionalInterface
    private interface Pass {
        void run(TcpConnection c, int ready) throws Exception;
    }

    private static final Pass OPEN_PASS = (c, ready) -> c.handler.onOpen(c);
    private static final Pass READ_PASS = (c, ready) -> c.reads.readLoop(ready);
    private static final Pass FLUSH_PASS = (c, ready) -> c.outbound.flush();
    private static final Pass URING_READ_PASS = (c, ready) -> {
        MemorySegment data = c.uringData;
        c.uringData = null;
        c.ctx.stats.add(NetStats.Counter.BYTES_READ, data.byteSize());
        c.reads.noteRead();
        c.handler.onRead(c, data);
    };
    private static final Pass URING_END_PASS = (c, ready) -> c.inputEnded();
    private static final Pass URING_SENT_PASS = (c, res) -> c.outbound.sendCompleted(res);
    private static final Pass URING_SHUT_PASS = (c, res) -> c.outputShut(res);

    /** io_uring: a receive's bytes (a view of a provided buffer, valid during the call). */
    void uringRead(MemorySegment data) {
        uringData = data;
        callbackPass(URING_READ_PASS, 0);
    }

    /** io_uring: the receive read end of stream. */
    void uringInputEnded() {
        callbackPass(URING_END_PASS, 0);
    }

    /** io_uring: the send in flight completed with {@code res} (bytes or {@code -errno}). */
    void uringSent(int res) {
        callbackPass(URING_SENT_PASS, res);
    }

    /** io_uring: the {@code SHUTDOWN} SQE completed with {@code res} (0 or {@code -errno}). */
    void uringOutputShut(int res) {
        callbackPass(URING_SHUT_PASS, res);
    }

    /**
     * Runs {@code pass} with writes deferred to one flush at its end ({@link #requestFlush}); an
     * exception fails only this connection. {@link #onEvent}, the hot path, inlines the same shape.
     */
    private void callbackPass(Pass pass, int ready) {
        inCallbacks = true;
        try {
            pass.run(this, ready);
            if (!is(CLOSED) && flushAtEnd) {
                flushAtEnd = false;
                outbound.flush();
            }
        } catch (Throwable t) {
            fail(t);
        } finally {
            inCallbacks = false;
        }
    }

    /** The read task ({@link ReadPath#run}): reads what the budget or a pause left over. */
    void readFromTask(int ready) {
        callbackPass(READ_PASS, ready);
    }

    /** The flush task ({@link OutboundQueue#run}). */
    void flushFromTask() {
        if (is(CLOSED)) {
            outbound.dropInbox();
            return;
        }
        callbackPass(FLUSH_PASS, 0);
    }

    @Override
    public void onEvent(Handle h, int ready) {
        if (is(CLOSED)) {
            return;
        }
        if (connector != null && !connector.onEvent(ready)) {
            return;
        }
        if (uring != null) {
            // The connect poll, or the epoll error edge of a half-open connection whose input
            // ended (UringStream#endOfStream): nothing reads the error, so it is asked for.
            if ((ready & Interest.ERROR) != 0 && !is(CLOSED) && is(INPUT_ENDED)) {
                reads.checkSocketError();
            }
            return;
        }
        inCallbacks = true;
        try {
            if ((ready & (Interest.READ | Interest.PEER_CLOSED | Interest.HANGUP | Interest.ERROR)) != 0) {
                if (!is(INPUT_ENDED | CLOSING)) {
                    reads.onReadable(ready);
                } else if ((ready & Interest.ERROR) != 0) {
                    reads.checkSocketError(); // nothing will read the error: ask for it
                }
            }
            if (!is(CLOSED) && (flushAtEnd || ((ready & Interest.WRITE) != 0 && !outbound.isEmpty()))) {
                flushAtEnd = false;
                outbound.flush();
            }
        } catch (Throwable t) {
            fail(t);
        } finally {
            inCallbacks = false;
        }
    }

    /** {@return whether reading is over: closing, closed or at end of stream} For the read path. */
    boolean readsEnded() {
        return is(CLOSED | CLOSING | INPUT_ENDED);
    }

    /** The read path read end of stream. */
    void inputEnded() throws Exception {
        advance(INPUT_ENDED);
        handler.onPeerClosed(this);
        if (is(OUTPUT_SHUT)) {
            closeNow(); // both directions have ended
        }
    }

    // ------------------------------------------------------------------ reactor thread: writes

    /** Asks for a flush: at the end of the current callback pass, or from one task. */
    void requestFlush() {
        if (inCallbacks) {
            flushAtEnd = true;
        } else {
            outbound.scheduleFlushTask();
        }
    }

    /** {@return whether a write (from {@code onWritable}) asked for a flush in this pass} Clears the request. */
    boolean takeFlushAtEnd() {
        boolean f = flushAtEnd;
        flushAtEnd = false;
        return f;
    }

    /** The queue is empty: a close or a FIN that waited for it follows. */
    void outputDrained() throws IOException {
        if (is(CLOSING)) {
            closeNow();
            return;
        }
        if (is(OUTPUT_SHUTTING) && !is(OUTPUT_SHUT)) {
            advance(OUTPUT_SHUT);
            if (uring != null && uring.submitShutdown()) {
                return; // the SQE's completion goes on in outputShut
            }
            outputShut(sys.shutdown(fd, Syscalls.SHUT_WR));
        }
    }

    /** The FIN went out ({@code r}: what {@code shutdown(SHUT_WR)} returned); a close may follow. */
    private void outputShut(int r) throws IOException {
        if (r < 0 && r != -Errno.ENOTCONN) {
            throw Errno.socketException("shutdown(SHUT_WR)", fd, -r);
        }
        if (is(INPUT_ENDED)) {
            closeNow();
        }
    }

    // ------------------------------------------------------------------ reactor thread: close

    private void closeGracefully() {
        if (is(CLOSING | CLOSED)) {
            return;
        }
        advance(CLOSING);
        outbound.shutWrites();
        reads.stop();
        requestFlush(); // the flush closes once the queue is empty
    }

    void fail(Throwable cause) {
        if (is(CLOSED)) {
            return;
        }
        if (closeCause == null) {
            closeCause = cause;
        }
        closeNow();
    }

    private void closeNow() {
        if (is(CLOSED)) {
            return;
        }
        advance(CLOSING | CLOSED);
        outbound.shutWrites();
        handle.close();
    }

    void abortNow() {
        if (!is(CLOSED)) {
            advance(ABORTED); // the caller asked for the queue to be dropped
            sys.setLinger(fd, true, 0); // close sends RST, drops the queue
            closeNow();
        }
    }

    /** The handle is closed and the fd released: free the queue, stop timers, tell the handler. */
    @Override
    public void onClose(Handle h, Throwable cause) {
        assert reactor.inReactorThread() : "onClose runs on the reactor thread only";
        advance(CLOSING | CLOSED);
        outbound.shutWrites();
        long dropped = outbound.dropAll();
        reads.cancelTimer();
        outbound.cancelTimers();
        if (uring != null) {
            uring.released();
        }
        Throwable why = closeCause != null ? closeCause : cause;
        if (why == null && !is(ABORTED) && dropped > 0) {
            // Closed under it (its reactor shut down): every write that answered true is either
            // sent or reported here.
            why = new SocketException(dropped + " queued bytes were not sent: the connection was closed by its reactor");
        }
        if (connector != null) {
            connector.closedBeforeOpen(why);
            return;
        }
        if (is(OPENED)) {
            ctx.stats.increment(outgoing ? NetStats.Counter.OUTGOING_CLOSED : NetStats.Counter.ACCEPTED_CLOSED);
            try {
                handler.onClose(this, why);
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "onClose of a connection threw", t);
            }
        }
    }

    /**
     * The fd was released by another thread after the reactor exited (a reference outlived a
     * failed reactor), so {@link #onClose} never ran: count the close, or the open gauge would
     * stay up forever. The reactor's last writes happen-before this (its exit is a volatile
     * write the releasing thread read).
     */
    private void releasedWithoutOnClose() {
        if ((stateAcquire() & OPENED) != 0 && connector == null) {
            ctx.stats.closedOffThread(outgoing);
        }
    }

    static void cancel(ScheduledTask t) {
        if (t != null) {
            t.cancel();
        }
    }

    // ------------------------------------------------------------------ state

    /** {@return the connection's handle} (tests: to hold a reference past a reactor's exit) */
    Handle handle() {
        return handle;
    }

    /** Reactor thread: whether any of {@code bits} is set. */
    boolean is(int bits) {
        return (state & bits) != 0;
    }

    /** Reactor thread: whether the handle's close was asked for. */
    boolean isClosed() {
        return is(CLOSED);
    }

    /** Reactor thread: the first failure, or null. */
    Throwable closeCause() {
        return closeCause;
    }

    /** Any thread: the state as last published by the reactor thread. */
    private int stateAcquire() {
        return (int) STATE.getAcquire(this);
    }

    /** Any thread: whether writes are refused (output shut down, or closing). */
    boolean writesShut() {
        return (stateAcquire() & WRITES_SHUT) != 0;
    }

    /** Reactor thread: adds {@code bits} (never removes one) and publishes the result. */
    private void advance(int bits) {
        int s = state;
        int next = s | bits;
        assert ConnectionState.forwardOnly(s, next) : "state " + Integer.toBinaryString(s) + " -> " + Integer.toBinaryString(next);
        STATE.setRelease(this, next);
    }

    // ------------------------------------------------------------------ any thread: API

    @Override
    public Reactor reactor() {
        return reactor;
    }

    @Override
    public boolean write(MemorySegment data) {
        return outbound.write(data, null, 0, data.byteSize());
    }

    @Override
    public boolean write(byte[] data) {
        return write(data, 0, data.length);
    }

    @Override
    public boolean write(byte[] data, int offset, int length) {
        Objects.checkFromIndexSize(offset, length, data.length);
        return outbound.write(null, data, offset, length);
    }

    void onReactor(Runnable r) {
        if (reactor.inReactorThread()) {
            r.run();
        } else {
            try {
                reactor.execute(r);
            } catch (RejectedExecutionException ignored) {
                // the reactor has stopped: the connection is closed already
            }
        }
    }

    @Override
    public boolean isWritable() {
        return !writesShut() && outbound.belowHighWatermark();
    }

    @Override
    public long queuedBytes() {
        return outbound.queuedBytes();
    }

    @Override
    public void pauseReading() {
        onReactor(uring != null ? uring::pause : reads::pause);
    }

    @Override
    public void resumeReading() {
        onReactor(() -> {
            if (!is(CLOSING | CLOSED)) {
                if (uring != null) {
                    uring.resume();
                } else {
                    reads.resume();
                }
            }
        });
    }

    @Override
    public void shutdownOutput() {
        onReactor(() -> {
            if (is(CLOSING | CLOSED | OUTPUT_SHUTTING)) {
                return;
            }
            advance(OUTPUT_SHUTTING);
            outbound.shutWrites();
            requestFlush(); // the flush sends FIN once the queue is empty
        });
    }

    @Override
    public void close() {
        onReactor(this::closeGracefully);
    }

    @Override
    public void abort() {
        onReactor(this::abortNow);
    }

    @Override
    public boolean isOpen() {
        return (stateAcquire() & (CLOSING | CLOSED)) == 0 && handle.isOpen();
    }

    @Override
    public CompletableFuture<Void> closeFuture() {
        return handle.closeFuture();
    }

    @Override
    public InetSocketAddress remoteAddress() {
        InetSocketAddress a = remote;
        if (a == null) {
            remote = a = SocketNames.of(handle, fd, true);
        }
        return a;
    }

    @Override
    public InetSocketAddress localAddress() {
        InetSocketAddress a = local;
        if (a == null) {
            local = a = SocketNames.of(handle, fd, false);
        }
        return a;
    }

    @Override
    public String toString() {
        return "Connection[fd=" + fd + ", reactor=" + reactor.index() + ", queued=" + queuedBytes()
                + (writesShut() ? ", output closed" : "") + (handle.isOpen() ? "" : ", closed") + "]";
    }
}
