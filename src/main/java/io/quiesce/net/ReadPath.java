package io.quiesce.net;

import io.quiesce.reactor.Interest;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.concurrent.TimeUnit;

/**
 * The read path of one {@link TcpConnection}, reactor thread only. On a readable edge it reads
 * into the reactor's read buffer until a short read (the queue was empty: new data raises a new
 * edge, so the {@code EAGAIN} read is skipped), {@code EAGAIN}, end of stream, a pause, or the
 * per-wake budget (then it goes on from a task, after the other ready connections had their
 * turn). Edges that arrive while paused are remembered and replayed on resume. It also keeps the
 * read-idle timer.
 *
 * <p><b>End of stream without the read that returns 0.</b> When the edge carries
 * {@code EPOLLRDHUP} and neither {@code EPOLLHUP} nor {@code EPOLLERR} (a FIN, no reset), the FIN
 * had arrived when the kernel reported the edge, and TCP queues in sequence order: everything the
 * peer sent before it was already in the receive queue. So a short read has read up to the FIN,
 * and the end of stream is delivered without another {@code read}. Where that does not hold it
 * reads on as before: a read that filled the buffer (more may be queued), a pause (the resume
 * reads), and urgent data ({@code EPOLLPRI}, asked for at registration for this reason): Linux
 * ends a read early at the urgent mark, so a short read there does not mean the queue is empty,
 * with or without a FIN.
 *
 * <p>The object is itself the read task ({@link #run}), so a connection pays for no extra one.
 */
final class ReadPath implements Runnable {
    private final TcpConnection c;
    private boolean readPaused;
    /** Ready bits of edges not yet read because of a pause or the budget; 0 when none. */
    private int pendingReady;
    private boolean readScheduled;
    private long lastReadNanos;
    private ScheduledTask readIdleTimer;

    ReadPath(TcpConnection c) {
        this.c = c;
    }

    /** A readable (or end, or error) edge while reading goes on: read it now, or keep it for resume. */
    void onReadable(int ready) throws Exception {
        if (readPaused) {
            pendingReady |= ready | Interest.READ;
        } else {
            readLoop(ready);
        }
    }

    /** Reads until drained, paused, closed or out of budget. {@code ready}: the edge's bits. */
    void readLoop(int ready) throws Exception {
        // With RDHUP/HUP/ERR in the edge a short read does not mean "nothing more": the end of
        // stream or the error still has to be read; nor with urgent data (a read stops at its mark).
        int endBits = ready & (Interest.PEER_CLOSED | Interest.HANGUP | Interest.ERROR | Syscalls.EPOLLPRI);
        boolean endPending = endBits != 0;
        // A FIN alone (no reset, no urgent mark): a short read has read everything before it.
        boolean finReached = endBits == Interest.PEER_CLOSED;
        TcpConnection c = this.c;
        NetContext ctx = c.ctx;
        long budget = c.options.readBudget();
        MemorySegment buf = ctx.readBuffer;
        long readBufferSize = buf.byteSize(); // the reactor's size, read here: not a field per idle connection
        boolean readSomething = false;
        while (true) {
            long n = c.sys.read(c.fd, buf, readBufferSize);
            if (n > 0) {
                readSomething = true;
                ctx.stats.add(NetStats.Counter.BYTES_READ, n);
                budget -= n;
                c.handler.onRead(c, ctx.readSlice(n));
                if (c.readsEnded()) {
                    break;
                }
                if (readPaused) {
                    pendingReady |= ready | Interest.READ;
                    break;
                }
                if (n < readBufferSize) {
                    if (!endPending) {
                        break;
                    }
                    if (finReached) {
                        pendingReady = 0;
                        c.inputEnded();
                        break;
                    }
                }
                if (budget <= 0) {
                    pendingReady |= ready | Interest.READ;
                    scheduleRead();
                    break;
                }
            } else if (n == 0) {
                pendingReady = 0;
                c.inputEnded();
                break;
            } else if (n == -Errno.EAGAIN) {
                break;
            } else if (n != -Errno.EINTR) {
                c.fail(Errno.socketException("read", c.fd, (int) -n));
                break;
            }
        }
        if (readSomething && !c.options.readIdleTimeout().isZero()) {
            lastReadNanos = System.nanoTime();
        }
    }

    /** io_uring: a receive delivered bytes (the read-idle timer counts it). */
    void noteRead() {
        if (!c.options.readIdleTimeout().isZero()) {
            lastReadNanos = System.nanoTime();
        }
    }

    /** An error edge once reading is over: nothing will read the error, so it is asked for. */
    void checkSocketError() {
        int err = c.sys.getsockoptInt(c.fd, Syscalls.SOL_SOCKET, Syscalls.SO_ERROR);
        if (err > 0) {
            c.fail(Errno.socketException("socket error (SO_ERROR)", c.fd, err));
        }
    }

    void pause() {
        readPaused = true;
    }

    /** Reading goes on (the connection is not closing), with what arrived while paused. */
    void resume() {
        if (!readPaused) {
            return;
        }
        readPaused = false;
        if (pendingReady != 0) {
            scheduleRead(); // never re-entered from a callback: the read runs from a task
        }
    }

    /** A close began: nothing more is read, and what was pending is forgotten. */
    void stop() {
        readPaused = true;
        pendingReady = 0;
    }

    private void scheduleRead() {
        if (readScheduled) {
            return;
        }
        readScheduled = true;
        c.reactor.execute(this);
    }

    /** The read task: what the budget or a pause left over, after the other connections' turn. */
    @Override
    public void run() {
        readScheduled = false;
        if (c.readsEnded() || readPaused || pendingReady == 0) {
            return;
        }
        int ready = pendingReady;
        pendingReady = 0;
        c.readFromTask(ready);
    }

    // ------------------------------------------------------------------ the read-idle timer

    /** Arms the read-idle timer, if the options ask for one; {@code now} counts as a read. */
    void start(long now) {
        lastReadNanos = now;
        Duration readIdle = c.options.readIdleTimeout();
        if (!readIdle.isZero()) {
            readIdleTimer = c.reactor.schedule(readIdle.toNanos(), TimeUnit.NANOSECONDS, this::checkReadIdle);
        }
    }

    void cancelTimer() {
        TcpConnection.cancel(readIdleTimer);
    }

    /** One timer per period, not per read: it compares the last read time and re-arms. */
    private void checkReadIdle() {
        if (c.isClosed()) {
            return;
        }
        Duration readIdle = c.options.readIdleTimeout();
        long timeout = readIdle.toNanos();
        long idle = System.nanoTime() - lastReadNanos;
        if (idle >= timeout) {
            c.fail(Errno.timedOut("read", c.fd, "nothing read for " + readIdle));
        } else {
            readIdleTimer = c.reactor.schedule(timeout - idle, TimeUnit.NANOSECONDS, this::checkReadIdle);
        }
    }
}
