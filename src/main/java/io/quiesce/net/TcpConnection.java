package io.quiesce.net;

import io.quiesce.buffer.Chunk;
import io.quiesce.buffer.ChunkQueue;
import io.quiesce.reactor.ClosedHandleException;
import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SockAddr;
import io.quiesce.sys.Syscalls;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * The one {@link Connection}: a socket registered once, edge-triggered, for
 * {@code IN|OUT|RDHUP}, whose epoll interest never changes again.
 *
 * <p><b>Read.</b> On a readable edge the connection reads into its reactor's read buffer until a
 * short read (the queue was empty: new data raises a new edge, so the {@code EAGAIN} read is
 * skipped), {@code EAGAIN}, end of stream, a pause, or the per-wake budget (then it continues from
 * a task, after the other ready connections had their turn). Edges that arrive while paused are
 * remembered and replayed on resume.
 *
 * <p><b>Write.</b> Writes on the reactor thread are copied into the chunk queue; inside this
 * connection's own callbacks they are sent once when the callback pass ends, elsewhere from one
 * task per burst. Writes from other threads are copied to the heap, put in an inbox and moved to
 * the chunk queue by that task. A short send means the socket buffer is full: sending stops until
 * the {@code EPOLLOUT} edge the kernel will raise when space frees (no {@code EPOLLOUT} toggling).
 *
 * <p><b>Close.</b> Through the handle's close protocol. The socket was made by Quiesce and never
 * handed out, so it is registered as owned and its close skips {@code EPOLL_CTL_DEL}.
 */
final class TcpConnection implements Connection, EventHandler {
    private static final System.Logger LOG = System.getLogger(TcpConnection.class.getName());
    private static final VarHandle QUEUED;
    private static final VarHandle FLUSH_SCHEDULED;
    private static final VarHandle INBOX;
    private static final VarHandle WRITERS;
    private static final VarHandle STATE;
    private static final Duration DEFAULT_DRAIN_TIMEOUT = Duration.ofSeconds(30);

    // ---- the state bits, in the order a connection normally gains them ----
    /** {@code onOpen} ran (accepted, or connected): the close is counted and reported. */
    static final int OPENED = 1;
    /** End of stream read (the peer's FIN). Independent of the output side. */
    static final int INPUT_ENDED = 1 << 1;
    /** {@code shutdownOutput()}: writes are refused; FIN once the queue is drained. */
    static final int OUTPUT_SHUTTING = 1 << 2;
    /** {@code shutdown(SHUT_WR)} done: the FIN is sent, nothing may follow it. */
    static final int OUTPUT_SHUT = 1 << 3;
    /** A close began: reading stopped, writes refused, the queue drains, then the handle closes. */
    static final int CLOSING = 1 << 4;
    /** The handle's close was asked for (or has run): nothing more happens on this connection. */
    static final int CLOSED = 1 << 5;
    /** {@code abort()}: the queue was dropped on purpose, so its loss is not reported. */
    static final int ABORTED = 1 << 6;
    /** Once any of these is set, writes are refused. */
    private static final int WRITES_SHUT = OUTPUT_SHUTTING | CLOSING | CLOSED;

    static {
        try {
            var l = MethodHandles.lookup();
            QUEUED = l.findVarHandle(TcpConnection.class, "queuedBytes", long.class);
            FLUSH_SCHEDULED = l.findVarHandle(TcpConnection.class, "flushScheduled", int.class);
            INBOX = l.findVarHandle(TcpConnection.class, "inbox", ConcurrentLinkedQueue.class);
            WRITERS = l.findVarHandle(TcpConnection.class, "foreignWriters", int.class);
            STATE = l.findVarHandle(TcpConnection.class, "state", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final NetContext ctx;
    private final Reactor reactor;
    private final Syscalls sys;
    private final int fd;
    private final ConnectionOptions options;
    private final ConnectionHandler handler;
    private final ChunkQueue out;
    private final Handle handle;
    private final Runnable flushTask = this::runFlushTask;
    private final long readBufferSize;

    // ---- any thread ----
    @SuppressWarnings("unused") // through QUEUED
    private volatile long queuedBytes;
    @SuppressWarnings("unused") // through FLUSH_SCHEDULED
    private volatile int flushScheduled;
    @SuppressWarnings("unused") // through INBOX
    private volatile ConcurrentLinkedQueue<byte[]> inbox;
    private volatile boolean unwritable;
    /**
     * Other threads inside {@link #writeForeign}, with the sign bit set once writes are shut (the
     * reactor's door, for one connection): once {@link #shutWrites} returns, every foreign write
     * that answered true is in the inbox, so it is sent or the close reports why it was not.
     */
    @SuppressWarnings("unused") // through WRITERS
    private volatile int foreignWriters;
    /**
     * The lifecycle, forward only: bits are added and never cleared (so the int only grows), by
     * the reactor thread alone, with a release store ({@link #advance}); other threads read it
     * with acquire ({@link #write}, {@link #isWritable()}, {@link #isOpen()}). The reactor thread
     * reads its own writes plainly. No bit yet: connecting (or accepted, about to open).
     */
    private int state;
    private volatile InetSocketAddress remote;
    private volatile InetSocketAddress local;

    // ---- reactor thread only ----
    private CompletableFuture<Connection> connectFuture;
    private ScheduledTask connectTimer;
    private boolean inCallbacks;
    private boolean flushAtEnd;
    private boolean readPaused;
    /** Ready bits of edges not yet read because of a pause or the budget; 0 when none. */
    private int pendingReady;
    private boolean readScheduled;
    private Runnable readTask;
    private Throwable closeCause;
    private long lastReadNanos;
    private long lastWriteProgressNanos;
    private ScheduledTask readIdleTimer;
    private ScheduledTask writeTimer;
    private ScheduledTask drainTimer;

    /** Registers {@code fd} on the context's reactor; the caller still owns the fd if this throws. */
    private TcpConnection(NetContext ctx, int fd, ConnectionOptions options, ConnectionHandler handler) {
        this.ctx = ctx;
        this.reactor = ctx.reactor;
        this.sys = ctx.sys;
        this.fd = fd;
        this.options = options;
        this.handler = handler;
        this.out = new ChunkQueue(ctx.memory);
        this.readBufferSize = ctx.readBuffer.byteSize();
        this.handle = ReactorInternals.registerOwned(reactor, fd, Interest.SOCKET_DEFAULT, this);
    }

    /**
     * Takes an accepted socket: registers it and calls {@code onOpen}. Reactor thread only. If the
     * registration fails (the reactor is shutting down) the fd is closed here.
     */
    static void accepted(NetContext ctx, int fd, ConnectionOptions options, ConnectionHandler handler) {
        TcpConnection c;
        try {
            c = new TcpConnection(ctx, fd, options, handler);
        } catch (ClosedHandleException e) {
            ctx.sys.close(fd);
            return;
        }
        c.open();
    }

    /** Starts a non-blocking connect. Reactor thread only. */
    static void connect(NetContext ctx, InetSocketAddress address, ConnectionOptions options, Duration timeout,
            ConnectionHandler handler, CompletableFuture<Connection> future) {
        Syscalls sys = ctx.sys;
        int fd = sys.socket(SockAddr.family(address), Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0);
        if (fd < 0) {
            future.completeExceptionally(Errno.socketException("socket", -1, -fd));
            return;
        }
        int r;
        try {
            NetContext.applySocketOptions(sys, ctx.linger, fd, options);
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
        c.connectFuture = future;
        if (r == 0) { // loopback can connect at once
            c.connected();
        } else if (timeout.isPositive()) {
            c.connectTimer = ctx.reactor.schedule(timeout.toNanos(), TimeUnit.NANOSECONDS, () -> {
                if (c.connectFuture != null && !c.is(CLOSED)) {
                    c.fail(Errno.timedOut("connect", c.fd, "no connection to " + address + " within " + timeout));
                }
            });
        }
    }

    // ------------------------------------------------------------------ reactor thread: events

    private void open() {
        advance(OPENED);
        ctx.stats.increment(ReactorStats.Counter.CONNECTIONS_OPENED);
        long now = System.nanoTime();
        lastReadNanos = now;
        lastWriteProgressNanos = now;
        armTimers();
        callbackPass(OPEN_PASS, 0);
    }

    /** One step run as a callback pass; non-capturing, so passing one allocates nothing. */
    @FunctionalInterface
    private interface Pass {
        void run(TcpConnection c, int ready) throws Exception;
    }

    private static final Pass OPEN_PASS = (c, ready) -> c.handler.onOpen(c);
    private static final Pass READ_PASS = (c, ready) -> c.readLoop(ready);
    private static final Pass FLUSH_PASS = (c, ready) -> c.flush();

    /**
     * Runs {@code pass} with writes deferred to one flush at its end ({@link #requestFlush}); an
     * exception fails only this connection. {@link #onEvent}, the hot path, inlines the same shape.
     */
    private void callbackPass(Pass pass, int ready) {
        inCallbacks = true;
        try {
            pass.run(this, ready);
            endCallbacks();
        } catch (Throwable t) {
            fail(t);
        } finally {
            inCallbacks = false;
        }
    }

    private void connected() {
        CompletableFuture<Connection> f = connectFuture;
        connectFuture = null;
        if (connectTimer != null) {
            connectTimer.cancel();
            connectTimer = null;
        }
        open();
        if (is(CLOSED) && closeCause != null) {
            f.completeExceptionally(closeCause);
        } else if (!f.complete(this)) {
            abortNow(); // the caller cancelled (or timed out) the connect: nobody will use this connection
        }
    }

    @Override
    public void onEvent(Handle h, int ready) {
        if (is(CLOSED)) {
            return;
        }
        if (connectFuture != null) {
            if ((ready & (Interest.WRITE | Interest.ERROR | Interest.HANGUP)) == 0) {
                return;
            }
            int err = sys.getsockoptInt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_ERROR);
            if (err != 0) {
                fail(err < 0 ? Errno.socketException("getsockopt(SO_ERROR)", fd, -err)
                        : Errno.socketException("connect", fd, err));
                return;
            }
            connected();
            if (is(CLOSED)) {
                return;
            }
        }
        inCallbacks = true;
        try {
            if ((ready & (Interest.READ | Interest.PEER_CLOSED | Interest.HANGUP | Interest.ERROR)) != 0) {
                if (!is(INPUT_ENDED | CLOSING)) {
                    if (readPaused) {
                        pendingReady |= ready | Interest.READ;
                    } else {
                        readLoop(ready);
                    }
                } else if ((ready & Interest.ERROR) != 0) {
                    checkSocketError(); // nothing will read the error: ask for it
                }
            }
            if (!is(CLOSED) && (flushAtEnd || ((ready & Interest.WRITE) != 0 && !out.isEmpty()))) {
                flushAtEnd = false;
                flush();
            }
        } catch (Throwable t) {
            fail(t);
        } finally {
            inCallbacks = false;
        }
    }

    private void checkSocketError() {
        int err = sys.getsockoptInt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_ERROR);
        if (err > 0) {
            fail(Errno.socketException("socket error (SO_ERROR)", fd, err));
        }
    }

    /** Reads until drained, paused, closed or out of budget. {@code ready}: the edge's bits. */
    private void readLoop(int ready) throws Exception {
        // With RDHUP/HUP/ERR in the edge a short read does not mean "nothing more": the end of
        // stream or the error still has to be read.
        boolean endPending = (ready & (Interest.PEER_CLOSED | Interest.HANGUP | Interest.ERROR)) != 0;
        long budget = options.readBudget();
        MemorySegment buf = ctx.readBuffer;
        boolean readSomething = false;
        while (true) {
            long n = sys.read(fd, buf, readBufferSize);
            if (n > 0) {
                readSomething = true;
                ctx.stats.add(ReactorStats.Counter.BYTES_READ, n);
                budget -= n;
                handler.onRead(this, ctx.readSlice(n));
                if (is(CLOSED | CLOSING | INPUT_ENDED)) {
                    break;
                }
                if (readPaused) {
                    pendingReady |= ready | Interest.READ;
                    break;
                }
                if (n < readBufferSize && !endPending) {
                    break;
                }
                if (budget <= 0) {
                    pendingReady |= ready | Interest.READ;
                    scheduleRead();
                    break;
                }
            } else if (n == 0) {
                inputEnded();
                break;
            } else if (n == -Errno.EAGAIN) {
                break;
            } else if (n != -Errno.EINTR) {
                fail(Errno.socketException("read", fd, (int) -n));
                break;
            }
        }
        if (readSomething && !options.readIdleTimeout().isZero()) {
            lastReadNanos = System.nanoTime();
        }
    }

    private void inputEnded() throws Exception {
        advance(INPUT_ENDED);
        pendingReady = 0;
        handler.onPeerClosed(this);
        if (is(OUTPUT_SHUT)) {
            closeNow(); // both directions have ended
        }
    }

    private void scheduleRead() {
        if (readScheduled) {
            return;
        }
        readScheduled = true;
        if (readTask == null) {
            readTask = this::runReadTask;
        }
        reactor.execute(readTask);
    }

    private void runReadTask() {
        readScheduled = false;
        if (is(CLOSED | CLOSING | INPUT_ENDED) || readPaused || pendingReady == 0) {
            return;
        }
        int ready = pendingReady;
        pendingReady = 0;
        callbackPass(READ_PASS, ready);
    }

    // ------------------------------------------------------------------ reactor thread: writes

    /** Asks for a flush: at the end of the current callback pass, or from one task. */
    private void requestFlush() {
        if (inCallbacks) {
            flushAtEnd = true;
        } else {
            scheduleFlushTask();
        }
    }

    private void scheduleFlushTask() {
        if (FLUSH_SCHEDULED.compareAndSet(this, 0, 1)) {
            try {
                reactor.execute(flushTask);
            } catch (RejectedExecutionException e) {
                FLUSH_SCHEDULED.setVolatile(this, 0); // the reactor is gone; so is the connection
            }
        }
    }

    private void runFlushTask() {
        FLUSH_SCHEDULED.setVolatile(this, 0);
        if (is(CLOSED)) {
            dropInbox();
            return;
        }
        callbackPass(FLUSH_PASS, 0);
    }

    private void drainInbox() {
        ConcurrentLinkedQueue<byte[]> q = inbox;
        if (q == null) {
            return;
        }
        byte[] b;
        while ((b = q.poll()) != null) {
            out.append(b, 0, b.length);
        }
    }

    /** Drops what other threads queued; {@return the bytes dropped} */
    private long dropInbox() {
        ConcurrentLinkedQueue<byte[]> q = inbox;
        if (q == null) {
            return 0;
        }
        long dropped = 0;
        byte[] b;
        while ((b = q.poll()) != null) {
            QUEUED.getAndAdd(this, (long) -b.length);
            dropped += b.length;
        }
        return dropped;
    }

    /**
     * Reactor thread, after the state refuses writes ({@link #WRITES_SHUT}): refuses the foreign
     * writes from now on and waits out those in flight.
     */
    private void shutWrites() {
        if ((int) WRITERS.getVolatile(this) >= 0) { // the sign bit has one writer: this thread
            WRITERS.getAndAdd(this, Integer.MIN_VALUE);
        }
        while ((int) WRITERS.getVolatile(this) != Integer.MIN_VALUE) {
            Thread.onSpinWait(); // a writer between its check and its offer: nanoseconds
        }
    }

    private void endCallbacks() throws Exception {
        if (!is(CLOSED) && flushAtEnd) {
            flushAtEnd = false;
            flush();
        }
    }

    /** Sends what is queued until the kernel takes no more. */
    private void flush() throws Exception {
        if (is(OUTPUT_SHUT)) { // a write from another thread raced shutdownOutput(): nothing may follow the FIN
            dropInbox();
            return;
        }
        drainInbox();
        long sentTotal = 0;
        while (!out.isEmpty()) {
            long requested;
            long r;
            boolean single = out.isSingleChunk();
            if (single) {
                Chunk c = out.head();
                requested = c.readableBytes();
                MemorySegment from = c.readIndex() == 0 ? c.segment() : c.segment().asSlice(c.readIndex());
                r = sys.send(fd, from, requested, Syscalls.MSG_NOSIGNAL);
            } else {
                int n = out.gather(ctx.iov, NetContext.MAX_IOV);
                requested = out.gatheredBytes(n);
                r = sys.sendmsg(fd, ctx.iov, n, Syscalls.MSG_NOSIGNAL);
            }
            if (r >= 0) {
                out.consume(r);
                sentTotal += r;
                if (r < requested) {
                    break; // the socket buffer is full; EPOLLOUT comes when it frees
                }
            } else if (r == -Errno.EAGAIN) {
                break;
            } else if (r != -Errno.EINTR) {
                fail(Errno.socketException(single ? "send" : "sendmsg", fd, (int) -r));
                return;
            }
        }
        if (sentTotal > 0) {
            ctx.stats.add(ReactorStats.Counter.BYTES_WRITTEN, sentTotal);
            long q = (long) QUEUED.getAndAdd(this, -sentTotal) - sentTotal;
            lastWriteProgressNanos = writeTimer != null ? System.nanoTime() : 0;
            if (unwritable && q <= options.lowWatermark()) {
                unwritable = false;
                // A Dekker pair with reserve(), which adds first and reads the flag second: a
                // writer that passed the high mark while the flag was still true did not set it,
                // but its bytes are in the count by the time we read it again here.
                if (queuedBytes() > options.highWatermark()) {
                    unwritable = true;
                } else {
                    handler.onWritable(this);
                    if (is(CLOSED)) {
                        return;
                    }
                    if (flushAtEnd && !out.isEmpty()) { // written from onWritable: loop once more
                        flushAtEnd = false;
                        flush();
                        return;
                    }
                }
            }
        }
        if (out.isEmpty() && isInboxEmpty()) {
            outputDrained();
        } else if (is(CLOSING) && drainTimer == null) {
            Duration d = options.writeTimeout().isZero() ? DEFAULT_DRAIN_TIMEOUT : options.writeTimeout();
            drainTimer = reactor.schedule(d.toNanos(), TimeUnit.NANOSECONDS,
                    () -> fail(Errno.timedOut("close", fd, "queued bytes not drained within " + d)));
        }
    }

    private boolean isInboxEmpty() {
        ConcurrentLinkedQueue<byte[]> q = inbox;
        return q == null || q.isEmpty();
    }

    private void outputDrained() throws IOException {
        if (is(CLOSING)) {
            closeNow();
            return;
        }
        if (is(OUTPUT_SHUTTING) && !is(OUTPUT_SHUT)) {
            advance(OUTPUT_SHUT);
            int r = sys.shutdown(fd, Syscalls.SHUT_WR);
            if (r < 0 && r != -Errno.ENOTCONN) {
                throw Errno.socketException("shutdown(SHUT_WR)", fd, -r);
            }
            if (is(INPUT_ENDED)) {
                closeNow();
            }
        }
    }

    // ------------------------------------------------------------------ reactor thread: close

    private void closeGracefully() {
        if (is(CLOSING | CLOSED)) {
            return;
        }
        advance(CLOSING);
        shutWrites();
        readPaused = true;
        pendingReady = 0;
        requestFlush(); // the flush closes once the queue is empty
    }

    private void fail(Throwable cause) {
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
        shutWrites();
        handle.close();
    }

    private void abortNow() {
        if (!is(CLOSED)) {
            advance(ABORTED); // the caller asked for the queue to be dropped
            NetContext.setLinger(sys, ctx.linger, fd, 0); // close sends RST, drops the queue
            closeNow();
        }
    }

    /** The handle is closed and the fd released: free the queue, stop timers, tell the handler. */
    @Override
    public void onClose(Handle h, Throwable cause) {
        assert reactor.inReactorThread() : "onClose runs on the reactor thread only";
        advance(CLOSING | CLOSED);
        shutWrites();
        long dropped = out.readableBytes();
        out.clear();
        long droppedForeign = dropInbox();
        QUEUED.getAndAdd(this, -dropped); // subtract, not set: a racing writer's count stays balanced
        cancel(readIdleTimer);
        cancel(writeTimer);
        cancel(drainTimer);
        cancel(connectTimer);
        Throwable why = closeCause != null ? closeCause : cause;
        if (why == null && !is(ABORTED) && dropped + droppedForeign > 0) {
            // Closed under it (its reactor shut down): every write that answered true is either
            // sent or reported here.
            why = new java.net.SocketException((dropped + droppedForeign)
                    + " queued bytes were not sent: the connection was closed by its reactor");
        }
        if (connectFuture != null) {
            connectFuture.completeExceptionally(why != null ? why
                    : new ClosedHandleException("closed before the connection was established"));
            connectFuture = null;
            return;
        }
        if (is(OPENED)) {
            if (reactor.inReactorThread()) { // the counters have one writer
                ctx.stats.increment(ReactorStats.Counter.CONNECTIONS_CLOSED);
            }
            try {
                handler.onClose(this, why);
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "onClose of a connection threw", t);
            }
        }
    }

    private static void cancel(ScheduledTask t) {
        if (t != null) {
            t.cancel();
        }
    }

    // ------------------------------------------------------------------ state

    /** Reactor thread: whether any of {@code bits} is set. */
    private boolean is(int bits) {
        return (state & bits) != 0;
    }

    /** Any thread: the state as last published by the reactor thread. */
    private int stateAcquire() {
        return (int) STATE.getAcquire(this);
    }

    /** Reactor thread: adds {@code bits} (never removes one) and publishes the result. */
    private void advance(int bits) {
        int s = state;
        int next = s | bits;
        assert forwardOnly(s, next) : "state " + Integer.toBinaryString(s) + " -> " + Integer.toBinaryString(next);
        STATE.setRelease(this, next);
    }

    /** The rules a transition keeps: what it needs first, and what cannot start once closing. */
    private static boolean forwardOnly(int s, int next) {
        int added = next & ~s;
        boolean ordered = ((next & OUTPUT_SHUT) == 0 || (next & OUTPUT_SHUTTING) != 0)
                && ((next & CLOSED) == 0 || (next & CLOSING) != 0);
        boolean lateStart = (s & CLOSING) != 0 && (added & (OPENED | INPUT_ENDED | OUTPUT_SHUTTING | OUTPUT_SHUT)) != 0;
        boolean lateAbort = (s & CLOSED) != 0 && (added & ABORTED) != 0;
        return next >= s && ordered && !lateStart && !lateAbort;
    }

    // ------------------------------------------------------------------ timers

    private void armTimers() {
        Duration readIdle = options.readIdleTimeout();
        if (!readIdle.isZero()) {
            readIdleTimer = reactor.schedule(readIdle.toNanos(), TimeUnit.NANOSECONDS, this::checkReadIdle);
        }
        Duration write = options.writeTimeout();
        if (!write.isZero()) {
            writeTimer = reactor.schedule(write.toNanos(), TimeUnit.NANOSECONDS, this::checkWriteProgress);
        }
    }

    /** One timer per period, not per read: it compares the last read time and re-arms. */
    private void checkReadIdle() {
        if (is(CLOSED)) {
            return;
        }
        long timeout = options.readIdleTimeout().toNanos();
        long idle = System.nanoTime() - lastReadNanos;
        if (idle >= timeout) {
            fail(Errno.timedOut("read", fd, "nothing read for " + options.readIdleTimeout()));
        } else {
            readIdleTimer = reactor.schedule(timeout - idle, TimeUnit.NANOSECONDS, this::checkReadIdle);
        }
    }

    private void checkWriteProgress() {
        if (is(CLOSED)) {
            return;
        }
        long timeout = options.writeTimeout().toNanos();
        long now = System.nanoTime();
        if (out.isEmpty() && isInboxEmpty()) {
            lastWriteProgressNanos = now; // nothing waiting: no stall
        }
        long stalled = now - lastWriteProgressNanos;
        if (stalled >= timeout) {
            fail(Errno.timedOut("send", fd, "queued bytes made no progress for " + options.writeTimeout()));
        } else {
            writeTimer = reactor.schedule(timeout - stalled, TimeUnit.NANOSECONDS, this::checkWriteProgress);
        }
    }

    // ------------------------------------------------------------------ any thread: API

    @Override
    public Reactor reactor() {
        return reactor;
    }

    @Override
    public boolean write(MemorySegment data) {
        long len = data.byteSize();
        if ((stateAcquire() & WRITES_SHUT) != 0) {
            return false;
        }
        if (len == 0) {
            return true;
        }
        if (reactor.inReactorThread()) {
            if (!reserve(len)) {
                return false;
            }
            drainInbox(); // writes made earlier on other threads go first
            out.append(data);
            requestFlush();
            return true;
        }
        return writeForeign(data.toArray(ValueLayout.JAVA_BYTE));
    }

    @Override
    public boolean write(byte[] data) {
        return write(data, 0, data.length);
    }

    @Override
    public boolean write(byte[] data, int offset, int length) {
        java.util.Objects.checkFromIndexSize(offset, length, data.length);
        if ((stateAcquire() & WRITES_SHUT) != 0) {
            return false;
        }
        if (length == 0) {
            return true;
        }
        if (reactor.inReactorThread()) {
            if (!reserve(length)) {
                return false;
            }
            drainInbox(); // writes made earlier on other threads go first
            out.append(data, offset, length);
            requestFlush();
            return true;
        }
        return writeForeign(java.util.Arrays.copyOfRange(data, offset, offset + length));
    }

    private boolean writeForeign(byte[] copy) {
        if ((int) WRITERS.getAndAdd(this, 1) < 0) { // writes are shut: refused, not dropped later
            WRITERS.getAndAdd(this, -1);
            return false;
        }
        try {
            if (!reserve(copy.length)) {
                return false;
            }
            ConcurrentLinkedQueue<byte[]> q = inbox;
            if (q == null) {
                var fresh = new ConcurrentLinkedQueue<byte[]>();
                q = INBOX.compareAndSet(this, null, fresh) ? fresh : inbox;
            }
            q.offer(copy);
            scheduleFlushTask();
            return true;
        } finally {
            WRITERS.getAndAdd(this, -1);
        }
    }

    /** Counts {@code len} more queued bytes, or closes the connection if that passes the hard limit. */
    private boolean reserve(long len) {
        long q = (long) QUEUED.getAndAdd(this, len) + len;
        if (q > options.maxQueuedBytes()) {
            QUEUED.getAndAdd(this, -len);
            var cause = new IOException("write queue limit of " + options.maxQueuedBytes()
                    + " bytes exceeded (a writer ignored isWritable())");
            onReactor(() -> fail(cause));
            return false;
        }
        if (q > options.highWatermark() && !unwritable) {
            unwritable = true;
        }
        return true;
    }

    private void onReactor(Runnable r) {
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
        return (stateAcquire() & WRITES_SHUT) == 0 && !unwritable;
    }

    @Override
    public long queuedBytes() {
        return (long) QUEUED.getVolatile(this);
    }

    @Override
    public void pauseReading() {
        onReactor(() -> readPaused = true);
    }

    @Override
    public void resumeReading() {
        onReactor(() -> {
            if (is(CLOSING | CLOSED) || !readPaused) {
                return;
            }
            readPaused = false;
            if (pendingReady != 0) {
                scheduleRead(); // never re-entered from a callback: the read runs from a task
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
            shutWrites();
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
            remote = a = address(true);
        }
        return a;
    }

    @Override
    public InetSocketAddress localAddress() {
        InetSocketAddress a = local;
        if (a == null) {
            local = a = address(false);
        }
        return a;
    }

    private InetSocketAddress address(boolean peer) {
        if (!handle.tryRetain()) {
            throw new IllegalStateException("connection is closed");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment addr = a.allocate(SockAddr.MAX_SIZE, 8);
            MemorySegment len = a.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
            Syscalls s = Syscalls.current();
            int r = peer ? s.getpeername(fd, addr, len) : s.getsockname(fd, addr, len);
            if (r < 0) {
                throw new IllegalStateException(Errno.socketException(peer ? "getpeername" : "getsockname", fd, -r));
            }
            return SockAddr.decode(addr);
        } finally {
            handle.release();
        }
    }

    @Override
    public String toString() {
        return "Connection[fd=" + fd + ", reactor=" + reactor.index() + ", queued=" + queuedBytes()
                + ((stateAcquire() & WRITES_SHUT) == 0 ? "" : ", output closed") + (handle.isOpen() ? "" : ", closed") + "]";
    }
}
