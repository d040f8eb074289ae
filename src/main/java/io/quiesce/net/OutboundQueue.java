package io.quiesce.net;

import io.quiesce.buffer.Chunk;
import io.quiesce.buffer.ChunkQueue;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.time.Duration;
import java.util.Arrays;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.ConnectionState.CLOSING;
import static io.quiesce.net.ConnectionState.OUTPUT_SHUT;

/**
 * The outbound path of one {@link TcpConnection}: the chunk queue the reactor thread appends to,
 * the inbox other threads put their copies in, the writer door that lets a close wait those out,
 * the queued-bytes count with its watermarks, the flush task, and the send loop. When the
 * connection's queue has drained, or a close or FIN may follow, is the connection's call.
 *
 * <p>A short send means the socket buffer is full: sending stops until the {@code EPOLLOUT} edge
 * the kernel raises when space frees (the registration is edge-triggered and never changes, so
 * there is no {@code EPOLLOUT} toggling).
 *
 * <p>The object is itself the flush task ({@link #run}), so a connection pays for no extra one.
 */
final class OutboundQueue implements Runnable {
    private static final VarHandle QUEUED;
    private static final VarHandle FLUSH_SCHEDULED;
    private static final VarHandle INBOX;
    private static final VarHandle WRITERS;
    /** How long a close waits for the queue when no write timeout is set; tests shorten it. */
    static volatile Duration defaultDrainTimeout = Duration.ofSeconds(30);

    static {
        try {
            var l = MethodHandles.lookup();
            QUEUED = l.findVarHandle(OutboundQueue.class, "queuedBytes", long.class);
            FLUSH_SCHEDULED = l.findVarHandle(OutboundQueue.class, "flushScheduled", int.class);
            INBOX = l.findVarHandle(OutboundQueue.class, "inbox", ConcurrentLinkedQueue.class);
            WRITERS = l.findVarHandle(OutboundQueue.class, "foreignWriters", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final TcpConnection c;
    private final ChunkQueue out;

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

    // ---- reactor thread only ----
    private long lastWriteProgressNanos;
    private ScheduledTask writeTimer;
    private ScheduledTask drainTimer;

    OutboundQueue(TcpConnection c) {
        this.c = c;
        this.out = new ChunkQueue(c.ctx.memory);
    }

    // ------------------------------------------------------------------ queueing

    /**
     * Both of the connection's writes, from any thread: {@code length} bytes of {@code segment} if
     * it is not null, else of {@code array} from {@code offset} (the caller checked the range).
     *
     * @return false if nothing was queued: writes are shut, or the hard limit was passed
     */
    boolean write(MemorySegment segment, byte[] array, int offset, long length) {
        if (c.writesShut()) {
            return false;
        }
        if (length == 0) {
            return true;
        }
        if (c.reactor.inReactorThread()) {
            if (!reserve(length)) {
                return false;
            }
            drainInbox(); // writes made earlier on other threads go first
            if (segment != null) {
                out.append(segment);
            } else {
                out.append(array, offset, (int) length);
            }
            c.requestFlush();
            return true;
        }
        return writeForeign(segment != null ? segment.toArray(ValueLayout.JAVA_BYTE)
                : Arrays.copyOfRange(array, offset, offset + (int) length));
    }

    /** Another thread's write: a private copy goes through the inbox and the flush task. */
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
        ConnectionOptions options = c.options;
        if (q > options.maxQueuedBytes()) {
            QUEUED.getAndAdd(this, -len);
            var cause = new IOException("write queue limit of " + options.maxQueuedBytes()
                    + " bytes exceeded (a writer ignored isWritable())");
            c.onReactor(() -> c.fail(cause));
            return false;
        }
        if (q > options.highWatermark() && !unwritable) {
            unwritable = true;
        }
        return true;
    }

    /**
     * Reactor thread, after the connection's state refuses writes: refuses the foreign writes from
     * now on and waits out those in flight.
     */
    void shutWrites() {
        if ((int) WRITERS.getVolatile(this) >= 0) { // the sign bit has one writer: this thread
            WRITERS.getAndAdd(this, Integer.MIN_VALUE);
        }
        while ((int) WRITERS.getVolatile(this) != Integer.MIN_VALUE) {
            Thread.onSpinWait(); // a writer between its check and its offer: nanoseconds
        }
    }

    /** {@return whether the queue is below the high watermark} Any thread. */
    boolean belowHighWatermark() {
        return !unwritable;
    }

    /** {@return bytes queued and not yet accepted by the kernel} Any thread. */
    long queuedBytes() {
        return (long) QUEUED.getVolatile(this);
    }

    /** {@return whether the reactor thread's queue is empty} (The inbox may still hold bytes.) */
    boolean isEmpty() {
        return out.isEmpty();
    }

    /** {@return whether nothing is queued at all, here or in the inbox} */
    boolean isDrained() {
        return out.isEmpty() && isInboxEmpty();
    }

    private boolean isInboxEmpty() {
        ConcurrentLinkedQueue<byte[]> q = inbox;
        return q == null || q.isEmpty();
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
    long dropInbox() {
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

    /** {@return the bytes dropped} The connection is closed: frees the queue and the inbox. */
    long dropAll() {
        long dropped = out.readableBytes();
        out.clear();
        long droppedForeign = dropInbox();
        QUEUED.getAndAdd(this, -dropped); // subtract, not set: a racing writer's count stays balanced
        return dropped + droppedForeign;
    }

    // ------------------------------------------------------------------ the flush task

    /** Asks for a flush from one task per burst (foreign writes, or writes outside a callback pass). */
    void scheduleFlushTask() {
        if (FLUSH_SCHEDULED.compareAndSet(this, 0, 1)) {
            try {
                c.reactor.execute(this);
            } catch (RejectedExecutionException e) {
                FLUSH_SCHEDULED.setVolatile(this, 0); // the reactor is gone; so is the connection
            }
        }
    }

    /** The flush task, on the reactor thread. */
    @Override
    public void run() {
        FLUSH_SCHEDULED.setVolatile(this, 0);
        c.flushFromTask();
    }

    // ------------------------------------------------------------------ sending

    /**
     * Sends what is queued; once it is all sent, the connection's FIN or close that waited for it
     * follows ({@link TcpConnection#outputDrained}). Reactor thread, inside a callback pass.
     */
    void flush() throws Exception {
        if (c.is(OUTPUT_SHUT)) { // a write from another thread raced shutdownOutput(): nothing may follow the FIN
            dropInbox();
            c.outputDrained(); // nothing more can be sent: a close waiting for the queue goes now
            return;
        }
        if (c.uring != null) {
            uringFlush();
            return;
        }
        long sent = send();
        if (sent < 0) {
            return; // failed with the send's error
        }
        if (sent > 0 && countSent(sent)) {
            c.handler.onWritable(c);
            if (c.isClosed()) {
                return;
            }
            if (!out.isEmpty() && c.takeFlushAtEnd()) { // written from onWritable: loop once more
                flush();
                return;
            }
        }
        if (isDrained()) {
            c.outputDrained();
        } else if (c.is(CLOSING)) {
            armDrainTimer();
        }
    }

    /**
     * io_uring: starts one send of what is queued unless one is in flight (its completion comes
     * back here); with nothing queued, the connection's FIN or close that waited follows.
     */
    private void uringFlush() throws Exception {
        drainInbox();
        if (c.uring.sendInFlight()) {
            if (c.is(CLOSING)) {
                armDrainTimer(); // a send parked on a full socket completes only when the peer reads
            }
            return;
        }
        if (out.isEmpty()) {
            c.outputDrained();
            return;
        }
        if (c.uring.submitSend(out) && c.is(CLOSING)) {
            armDrainTimer();
        }
    }

    /**
     * io_uring: the send in flight completed. A short send leaves the rest queued for the next
     * one; then the same accounting as a synchronous send (watermarks, {@code onWritable}).
     */
    void sendCompleted(int res) throws Exception {
        if (res < 0) {
            if (res == -Errno.EAGAIN || res == -Errno.EINTR) {
                uringFlush();
            } else {
                c.fail(Errno.socketException(c.uring.sendCall(), c.fd, -res));
            }
            return;
        }
        if (res > 0) {
            out.consume(res);
            if (countSent(res)) {
                c.handler.onWritable(c);
                if (c.isClosed()) {
                    return;
                }
            }
        }
        if (c.is(OUTPUT_SHUT)) {
            dropInbox();
            c.outputDrained();
            return;
        }
        uringFlush();
    }

    /**
     * Sends what is queued until the kernel takes no more.
     *
     * @return the bytes sent, or -1 if a send failed (the connection is failed with it)
     */
    private long send() {
        drainInbox();
        Syscalls sys = c.sys;
        int fd = c.fd;
        long sentTotal = 0;
        while (!out.isEmpty()) {
            long requested;
            long r;
            boolean single = out.isSingleChunk();
            if (single) {
                Chunk h = out.head();
                requested = h.readableBytes();
                MemorySegment from = h.readIndex() == 0 ? h.segment() : h.segment().asSlice(h.readIndex());
                r = sys.send(fd, from, requested, Syscalls.MSG_NOSIGNAL);
            } else {
                NetContext ctx = c.ctx;
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
                c.fail(Errno.socketException(single ? "send" : "sendmsg", fd, (int) -r));
                return -1;
            }
        }
        return sentTotal;
    }

    /**
     * Counts {@code sent > 0} bytes off the queue.
     *
     * @return whether that brought it down to the low watermark after it had passed the high one,
     *         so {@code onWritable} is due
     */
    private boolean countSent(long sent) {
        c.ctx.stats.add(NetStats.Counter.BYTES_WRITTEN, sent);
        long q = (long) QUEUED.getAndAdd(this, -sent) - sent;
        lastWriteProgressNanos = writeTimer != null ? System.nanoTime() : 0;
        ConnectionOptions options = c.options;
        if (unwritable && q <= options.lowWatermark()) {
            unwritable = false;
            // A Dekker pair with reserve(), which adds first and reads the flag second: a
            // writer that passed the high mark while the flag was still true did not set it,
            // but its bytes are in the count by the time we read it again here.
            if (queuedBytes() > options.highWatermark()) {
                unwritable = true;
            } else {
                return true;
            }
        }
        return false;
    }

    // ------------------------------------------------------------------ timers

    /** Arms the write-stall timer, if the options ask for one; {@code now} counts as progress. */
    void start(long now) {
        lastWriteProgressNanos = now;
        Duration write = c.options.writeTimeout();
        if (!write.isZero()) {
            writeTimer = c.reactor.schedule(write.toNanos(), TimeUnit.NANOSECONDS, this::checkWriteProgress);
        }
    }

    /** A close waits for the queue to drain, but not for ever: the write timeout, or 30 s. */
    private void armDrainTimer() {
        if (drainTimer != null) {
            return;
        }
        ConnectionOptions options = c.options;
        Duration d = options.writeTimeout().isZero() ? defaultDrainTimeout : options.writeTimeout();
        drainTimer = c.reactor.schedule(d.toNanos(), TimeUnit.NANOSECONDS,
                () -> c.fail(Errno.timedOut("close", c.fd, "queued bytes not drained within " + d)));
    }

    void cancelTimers() {
        TcpConnection.cancel(writeTimer);
        TcpConnection.cancel(drainTimer);
    }

    private void checkWriteProgress() {
        if (c.isClosed()) {
            return;
        }
        ConnectionOptions options = c.options;
        long timeout = options.writeTimeout().toNanos();
        long now = System.nanoTime();
        if (isDrained()) {
            lastWriteProgressNanos = now; // nothing waiting: no stall
        }
        long stalled = now - lastWriteProgressNanos;
        if (stalled >= timeout) {
            c.fail(Errno.timedOut("send", c.fd, "queued bytes made no progress for " + options.writeTimeout()));
        } else {
            writeTimer = c.reactor.schedule(timeout - stalled, TimeUnit.NANOSECONDS, this::checkWriteProgress);
        }
    }
}
