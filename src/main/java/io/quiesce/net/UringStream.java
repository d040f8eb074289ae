package io.quiesce.net;

import io.quiesce.buffer.Chunk;
import io.quiesce.buffer.ChunkQueue;
import io.quiesce.reactor.Interest;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.CompletionHandler;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;

/**
 * The io_uring side of one {@link TcpConnection} (the {@code URING} transport), reactor thread
 * only: a multishot receive into the reactor's provided buffers, at most one send in flight, the
 * half-close ({@code SHUTDOWN}), the client connect ({@code CONNECT}, or a poll where the kernel
 * lacks it), and the cancels of a close.
 *
 * <p><b>The close promise on completions.</b> Every SQE's {@code user_data} is this owner's
 * token (slot + generation + op), never the fd. While any op is in flight the connection holds
 * one reference on its handle, dropped when the last CQE is reaped; the handle's close cancels
 * the ops ({@link #closeProcessed}, {@code ASYNC_CANCEL} by token) and {@code close(fd)} follows
 * only once that reference is gone, so no op can run on a reused fd number. The slot is given
 * back after the fd is released ({@link #released}); a later CQE with its old token is dropped
 * by the ring as stale.
 *
 * <p><b>Receive.</b> Each CQE names a provided buffer; {@code onRead} sees a view of it, and it
 * returns to the ring when the callback ends. The multishot receive ends with {@code ENOBUFS}
 * when the ring runs dry (counted and re-armed at once: the buffers of this round are back by the
 * next enter, so it never stalls), with 0 at end of stream, with an error, or with
 * {@code ECANCELED} after a pause. Data already received when a pause takes effect is kept
 * (copied) and handed over, in order, on resume. {@code readBudget} holds per round of CQEs
 * ({@link #overBudget}): what a connection receives past it in one round is kept the same way
 * and handed over by a task, after the other connections' CQEs of the round.
 *
 * <p><b>Half-close and connect.</b> {@code shutdownOutput()} is a {@code SHUTDOWN} SQE once the
 * queue is empty and no send is in flight ({@link #submitShutdown}); a client connect is a
 * {@code CONNECT} SQE ({@link #submitConnect}). Both hold the handle like the other ops; where
 * the kernel lacks the opcode, {@code shutdown(2)} and {@code connect(2)} plus a poll are used.
 */
final class UringStream implements CompletionHandler {
    static final int OP_RECV = 1;
    static final int OP_SEND = 2;
    static final int OP_CANCEL = 3;
    static final int OP_POLL = 4;
    static final int OP_SHUTDOWN = 5;
    static final int OP_CONNECT = 6;
    private static final int ENOBUFS = Errno.ENOBUFS;
    private static final int ECANCELED = TransportRing.ECANCELED;
    private static final int EINPROGRESS = Errno.EINPROGRESS;
    private static final int EALREADY = Errno.EALREADY;
    /** poll(2) bits equal the epoll ones for these ({@code POLLOUT}, {@code POLLERR}, {@code POLLHUP}). */
    private static final int CONNECT_POLL = Interest.WRITE | Interest.ERROR | Interest.HANGUP;

    private final TcpConnection c;
    private final NetContext ctx;
    private final TransportRing t;
    final int slot;
    private int opsInFlight;
    private boolean recvArmed;
    private boolean paused;
    private boolean sendInFlight;
    private boolean pollArmed;
    private boolean sendWasGather;
    private MemorySegment sendBlock;
    /** The {@code CONNECT} SQE's sockaddr (in a send block), alive until its CQE. */
    private MemorySegment connectAddress;
    private boolean closing;
    /** Bytes received after a pause was asked for, before its cancel took effect; then the end. */
    private ChunkQueue stash;
    private boolean stashedEnd;
    private boolean stashTaskQueued;
    /** The receive budget: the ring's round these bytes were delivered in. */
    private int budgetRound;
    private int budgetUsed;

    UringStream(TcpConnection c, NetContext ctx) {
        this.c = c;
        this.ctx = ctx;
        this.t = ctx.transport;
        this.slot = t.register(this);
    }

    /** {@return the token of op {@code op} of this connection} (tests) */
    long token(int op) {
        return t.token(slot, op);
    }

    /** {@return whether a {@code CONNECT} SQE is in flight} (tests) */
    boolean connectInFlight() {
        return connectAddress != null;
    }

    /** {@return ops in flight} (tests) */
    int opsInFlight() {
        return opsInFlight;
    }

    // ------------------------------------------------------------------ ops in flight hold the handle

    private boolean beginOp() {
        if (opsInFlight == 0 && !c.handle().tryRetain()) {
            return false; // closing: nothing new starts
        }
        opsInFlight++;
        return true;
    }

    private void endOp() {
        if (--opsInFlight == 0) {
            c.handle().release(); // the close, if asked for, may finish now
        }
    }

    // ------------------------------------------------------------------ receive

    /** Arms the multishot receive unless it is armed, paused, or reading is over. */
    void armRecv() {
        if (recvArmed || paused || closing || c.readsEnded() || !beginOp()) {
            return;
        }
        t.ring().prepRecvMultishot(t.sqe(), c.fd, t.bufferGroup(), 0, t.token(slot, OP_RECV));
        recvArmed = true;
    }

    void pause() {
        if (paused) {
            return;
        }
        paused = true;
        cancel(OP_RECV, recvArmed);
    }

    void resume() {
        if (!paused) {
            return;
        }
        paused = false;
        if (stashedEnd || stash != null && !stash.isEmpty()) {
            scheduleStash();
        }
        armRecv();
    }

    private void cancel(int op, boolean inFlight) {
        if (!inFlight || !beginOp()) {
            return;
        }
        t.ring().prepCancel(t.sqe(), t.token(slot, op), Ring.CANCEL_ALL, t.token(slot, OP_CANCEL));
        t.countCancel();
    }

    private void onRecv(int res, int flags, boolean more) {
        if (res > 0) {
            int bid = Ring.bufferId(flags);
            try {
                if (!closing && !c.readsEnded()) {
                    MemorySegment data = ctx.bufferSlice(bid, res);
                    if (paused || stash != null && !stash.isEmpty()) {
                        stash().append(data); // delivered in order on resume (or by the task queued)
                    } else if (overBudget(res)) {
                        stash().append(data);
                        scheduleStash(); // after the other owners' CQEs of this round
                    } else {
                        c.uringRead(data);
                    }
                }
            } finally {
                t.recycle(bid); // the callback has returned: the buffer goes back
            }
            if (!more) {
                armRecv(); // ended for a reason of the kernel's (e.g. CQ overflow): go on
            }
            return;
        }
        if (more) {
            return;
        }
        if (res == 0) {
            if (closing || c.readsEnded()) {
                return;
            }
            if (paused || stash != null && !stash.isEmpty()) {
                stashedEnd = true;
            } else {
                endOfStream();
            }
        } else if (res == -ENOBUFS) {
            t.countBuffersExhausted();
            armRecv(); // this round's buffers are recycled and published before the next enter
        } else if (res == -ECANCELED) {
            armRecv(); // a pause (no-op while paused) or a close (no-op while closing)
        } else if (!closing) {
            c.fail(Errno.socketException("recv", c.fd, -res));
        }
    }

    /**
     * The read budget on completions: {@code readBudget} bytes per connection per round (one
     * dispatch of the ring's CQEs), as the epoll read path reads at most that much per wake-up.
     * The receive that crosses it is delivered; the connection's later CQEs of the same round are
     * copied to the stash and delivered from a task, which runs after every other owner's CQEs of
     * the round and before the next enter. The multishot receive stays armed (a cancel and re-arm
     * would cost two SQEs and lose the kernel's poll), so the copy is the price of fairness, and
     * only a connection that has had its budget pays it.
     *
     * @return whether {@code n} more bytes must wait for the others
     */
    private boolean overBudget(int n) {
        int round = t.round();
        if (round != budgetRound) {
            budgetRound = round;
            budgetUsed = 0;
        }
        if (budgetUsed >= c.options.readBudget()) {
            return true;
        }
        budgetUsed += Math.min(n, Integer.MAX_VALUE - budgetUsed);
        return false;
    }

    /**
     * End of stream: the handler hears it. A connection left half-open (its output still ours)
     * is then added to the reactor's epoll, edge-triggered with no interest but the implicit
     * {@code EPOLLERR|EPOLLHUP}, so a reset that follows the peer's FIN closes it with the socket
     * error, as on the epoll transport. Not an io_uring poll: io_uring always reports
     * {@code EPOLLRDHUP} ({@code IO_POLL_UNMASK}), which is permanently set after the FIN, so any
     * poll would complete at once.
     */
    private void endOfStream() {
        c.uringInputEnded();
        if (!closing && !c.isClosed()) {
            c.handle().interest(0);
        }
    }

    private ChunkQueue stash() {
        if (stash == null) {
            stash = new ChunkQueue(ctx.memory);
        }
        return stash;
    }

    private void scheduleStash() {
        if (!stashTaskQueued) {
            stashTaskQueued = true;
            c.reactor.execute(this::deliverStash);
        }
    }

    /** After a resume: what arrived during the pause, in order, then the end of stream if it came. */
    private void deliverStash() {
        stashTaskQueued = false;
        if (closing || c.readsEnded()) {
            freeStash();
            return;
        }
        while (stash != null && !stash.isEmpty() && !paused && !c.readsEnded()) {
            Chunk h = stash.head();
            int n = h.readableBytes();
            MemorySegment data = h.segment().asSlice(h.readIndex(), n);
            c.uringRead(data);
            if (stash != null) {
                stash.consume(n);
            }
        }
        if (!paused && stashedEnd && (stash == null || stash.isEmpty()) && !c.readsEnded()) {
            stashedEnd = false;
            endOfStream();
        }
    }

    private void freeStash() {
        if (stash != null) {
            stash.clear();
            stash = null;
        }
    }

    // ------------------------------------------------------------------ send

    /** {@return whether a send is in flight (its completion sends what follows)} */
    boolean sendInFlight() {
        return sendInFlight;
    }

    /**
     * Submits one {@code SEND} (one chunk) or {@code SENDMSG} (the queue's chunks gathered) with
     * {@code MSG_NOSIGNAL}. The chunks stay in the queue, alive, until the completion consumes
     * what was sent.
     *
     * @return false if nothing could start (the connection is closing)
     */
    boolean submitSend(ChunkQueue out) {
        if (sendInFlight || closing || !beginOp()) {
            return false;
        }
        long sqe = t.sqe();
        long token = t.token(slot, OP_SEND);
        if (out.isSingleChunk()) {
            Chunk h = out.head();
            t.ring().prepSend(sqe, c.fd, h.address() + h.readIndex(), h.readableBytes(), Syscalls.MSG_NOSIGNAL, token);
            sendWasGather = false;
        } else {
            MemorySegment b = ctx.acquireSendBlock();
            MemorySegment header = b.asSlice(0, TransportRing.MSGHDR_SIZE);
            MemorySegment iov = b.asSlice(TransportRing.MSGHDR_SIZE);
            int n = out.gather(iov, NetContext.MAX_IOV);
            TransportRing.msghdr(header, iov, n);
            t.ring().prepSendmsg(sqe, c.fd, header.address(), Syscalls.MSG_NOSIGNAL, token);
            sendBlock = b;
            sendWasGather = true;
        }
        sendInFlight = true;
        return true;
    }

    /** {@return the name of the call the last send was, for errors} */
    String sendCall() {
        return sendWasGather ? "sendmsg" : "send";
    }

    // ------------------------------------------------------------------ half-close

    /**
     * Half-close as an {@code IORING_OP_SHUTDOWN(SHUT_WR)} SQE; its completion goes to
     * {@link TcpConnection#uringOutputShut}. The caller issues it once the queue is empty and no
     * send is in flight, so the FIN follows the last byte. Not linked ({@code IOSQE_IO_LINK}) to
     * the last send: a short send (no {@code MSG_WAITALL}) does not break a link, so the FIN could
     * overtake the rest of the queue; and the shutdown would only ride an enter that comes anyway.
     * The kernel runs it in an io-wq worker (it cannot be done without blocking), and it is not
     * cancelled by a close, which waits for it: it always completes on its own.
     *
     * @return false if the kernel lacks the opcode: the caller calls {@code shutdown(2)} itself
     */
    boolean submitShutdown() {
        if (!t.supports(Ring.OP_SHUTDOWN)) {
            return false;
        }
        if (closing || !beginOp()) {
            return true; // closing: close(fd) ends the output anyway
        }
        t.ring().prepShutdown(t.sqe(), c.fd, Syscalls.SHUT_WR, t.token(slot, OP_SHUTDOWN));
        return true;
    }

    // ------------------------------------------------------------------ connect

    /** {@return whether connects on this reactor are {@code CONNECT} SQEs} */
    static boolean connectsByRing(NetContext ctx) {
        return ctx.transport != null && ctx.transport.supports(Ring.OP_CONNECT);
    }

    /**
     * A client connect as an {@code IORING_OP_CONNECT} SQE; its CQE ends it
     * ({@link Connector#onConnectCompleted}) with 0 or the connect's {@code -errno}, so neither
     * {@code connect(2)} nor {@code getsockopt(SO_ERROR)} is called. The sockaddr lives in a send
     * block (no send can be in flight before the connection opens) until the CQE, whatever the
     * kernel version copies it at. A close (the connect timer's) cancels it and waits for its CQE.
     */
    void submitConnect(InetSocketAddress address) {
        if (!beginOp()) {
            return;
        }
        MemorySegment b = ctx.acquireSendBlock();
        int len = SockAddr.encode(address, b);
        t.ring().prepConnect(t.sqe(), c.fd, b.address(), len, t.token(slot, OP_CONNECT));
        connectAddress = b;
    }

    /** A client connect in progress: one poll for writability ends it (the connector reads SO_ERROR). */
    void pollConnect() {
        if (!beginOp()) {
            return;
        }
        t.ring().prepPollAdd(t.sqe(), c.fd, CONNECT_POLL, false, t.token(slot, OP_POLL));
        pollArmed = true;
    }

    // ------------------------------------------------------------------ completions and close

    @Override
    public void onCompletion(int op, int res, int flags) {
        boolean more = (flags & Ring.CQE_F_MORE) != 0;
        try {
            switch (op) {
                case OP_RECV -> {
                    if (!more) {
                        recvArmed = false;
                    }
                    onRecv(res, flags, more);
                }
                case OP_SEND -> {
                    sendInFlight = false;
                    if (sendBlock != null) {
                        ctx.releaseSendBlock(sendBlock);
                        sendBlock = null;
                    }
                    if (!closing && !c.isClosed()) {
                        c.uringSent(res);
                    }
                }
                case OP_POLL -> {
                    pollArmed = false;
                    if (!closing && !c.isClosed() && res != -ECANCELED) {
                        int ready = res < 0 ? Interest.ERROR : res;
                        if ((ready & CONNECT_POLL) == 0) {
                            pollConnect(); // only EPOLLRDHUP (always reported): not the connect's end yet
                        } else if (c.connector != null) {
                            c.onEvent(c.handle(), ready); // the connect's end
                        }
                    }
                }
                case OP_CONNECT -> {
                    ctx.releaseSendBlock(connectAddress);
                    connectAddress = null;
                    if (!closing && !c.isClosed() && c.connector != null) {
                        if (res == -EINPROGRESS || res == -EALREADY) {
                            pollConnect(); // the op ran where it could not wait (io-wq): poll as before
                        } else {
                            c.connector.onConnectCompleted(res);
                        }
                    }
                }
                case OP_SHUTDOWN -> {
                    if (!closing && !c.isClosed()) {
                        c.uringOutputShut(res);
                    }
                }
                default -> { } // OP_CANCEL: its own CQE; the cancelled op's comes separately
            }
        } finally {
            if (!more) {
                endOp();
            }
        }
    }

    /**
     * The handle's close was processed (reactor thread): nothing new starts, and every op in
     * flight is cancelled; the last CQE drops the reference the close waits for.
     */
    void closeProcessed() {
        if (closing) {
            return;
        }
        closing = true;
        if (recvArmed) {
            cancel(OP_RECV, true);
        }
        if (sendInFlight) {
            cancel(OP_SEND, true);
        }
        if (pollArmed) {
            cancel(OP_POLL, true);
        }
        if (connectAddress != null) {
            cancel(OP_CONNECT, true);
        }
    }

    /**
     * The ring failed and is gone: none of this connection's CQEs will come, so its ops count as
     * ended (the send block goes back, the handle's reference is dropped) and nothing new starts;
     * the close the reactor's failure began can finish.
     */
    @Override
    public void ringLost() {
        closing = true;
        recvArmed = false;
        sendInFlight = false;
        pollArmed = false;
        if (sendBlock != null) {
            ctx.releaseSendBlock(sendBlock);
            sendBlock = null;
        }
        if (connectAddress != null) {
            ctx.releaseSendBlock(connectAddress);
            connectAddress = null;
        }
        if (opsInFlight > 0) {
            opsInFlight = 0;
            c.handle().release();
        }
    }

    /** The fd is released (no op in flight): the slot goes back, and the stash is freed. */
    void released() {
        freeStash();
        t.unregister(slot);
    }
}
