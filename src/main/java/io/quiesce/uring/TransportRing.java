package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.__kernel_timespec;
import io.quiesce.sys.linux.io_uring_getevents_arg;
import io.quiesce.sys.linux.msghdr;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The ring of the completion-based transport: socket ops (accept, receive, send, cancel, poll)
 * submitted by their owners, plus one {@code IORING_OP_EPOLL_WAIT} kept in flight on the
 * reactor's epoll fd (the eventfd wakeup and any caller-registered fd), so one
 * {@code io_uring_enter} per loop iteration submits everything queued and waits for the first
 * CQE of any kind, bounded by the enter's own timeout ({@code IORING_ENTER_EXT_ARG}).
 *
 * <p><b>Tokens.</b> Every SQE's {@code user_data} is a token made by {@link #token}: the owner's
 * slot, the slot's generation and the op kind, never an fd. An owner gives its slot back with
 * {@link #unregister} once its last op has completed; the slot's generation moves on, so a CQE
 * carrying an older generation (which a correct owner never leaves behind) is dropped and counted
 * ({@link #staleCqes()}), never delivered to the slot's next owner.
 *
 * <p><b>Order of a round</b> ({@link #await}): the provided buffers recycled since the last round
 * are published, the wait is re-armed if its CQE was reaped, one enter submits and waits, and
 * every CQE is copied out of the ring; {@link #dispatch} then hands them to their owners (one
 * dispatch is one {@link #round()}, the unit an owner rations its receives by). The
 * epoll events array is written by the kernel only inside the enter (with {@code DEFER_TASKRUN};
 * without it, when the wait completes, which happens only while the wait is in flight — between
 * rounds' dispatch, never while the caller reads the events of a completed one).
 *
 * <p><b>Probe.</b> The ops the transport cannot do without are checked when it opens; the
 * optional ones ({@code SHUTDOWN}, {@code CONNECT}) are asked for with {@link #supports}, and
 * their owners use the plain system call where one is missing.
 *
 * <p><b>A ring that fails</b> (an enter refused for a reason no retry mends: its fd closed or
 * replaced, say) is {@linkplain #lost() lost}; {@link #abandon} then tears it down and tells every
 * owner that its ops are over ({@link CompletionHandler#ringLost}), so the closes waiting for them
 * complete. Tearing the ring down first is what makes that safe: once its last mapping and fd are
 * gone the kernel cancels every request of the ring, and the ring's deferred completions (where a
 * receive would copy into a buffer or a send read a chunk) are dropped rather than run. A request
 * holds its own reference to the socket's file, never the fd number, so closing the number
 * afterwards cannot steer it to a file that reuses the number.
 *
 * <p>One thread — the one that opened it — for its whole life.
 */
public final class TransportRing implements AutoCloseable {
    /**
     * How the ring is built.
     *
     * @param entries SQ size (more SQEs in one iteration are submitted early)
     * @param bufferCount provided receive buffers (a power of two)
     * @param bufferSize bytes per receive buffer
     * @param disabledSysctl the io_uring sysctl to honour
     * @param setupFlags setup flag sets to try in order
     * @param probeView applied to the kernel's probe before it is checked (tests force a missing op)
     */
    public record Options(int entries, int bufferCount, int bufferSize, Path disabledSysctl,
                          List<Integer> setupFlags, UnaryOperator<Probe> probeView) {
        /** {@return 1024 entries, 512 buffers of 16 KiB, the real sysctl, flags and probe} */
        public static Options defaults() {
            return new Options(1024, 512, 16 * 1024, UringSupport.DISABLED_SYSCTL, UringSupport.SETUP_FLAGS,
                    UnaryOperator.identity());
        }

        /** {@return these options with another provided-buffer ring} */
        public Options withBuffers(int count, int size) {
            return new Options(entries, count, size, disabledSysctl, setupFlags, probeView);
        }

        /** {@return these options with another probe view} */
        public Options withProbeView(UnaryOperator<Probe> view) {
            return new Options(entries, bufferCount, bufferSize, disabledSysctl, setupFlags, view);
        }
    }

    /** The accept flags of every accepted socket: non-blocking and close-on-exec. */
    public static final int ACCEPT_FLAGS = LinuxH.SOCK_NONBLOCK() | LinuxH.SOCK_CLOEXEC();

    /** Bytes of a {@code struct msghdr} for {@link Ring#prepSendmsg}. */
    public static final long MSGHDR_SIZE = msghdr.layout().byteSize();

    private static final int ETIME = LinuxH.ETIME();
    private static final int EBUSY = LinuxH.EBUSY();
    private static final int NO_RESULT = Integer.MIN_VALUE;
    /** {@code ECANCELED}: the result of an op an {@code ASYNC_CANCEL} (or a ring teardown) cancelled. */
    public static final int ECANCELED = LinuxH.ECANCELED();
    private static final long TAG_WAIT = 1L << 63;
    private static final int SLOT_BITS = 24;
    private static final int SLOT_MASK = (1 << SLOT_BITS) - 1;
    private static final int GEN_SHIFT = SLOT_BITS;
    private static final long GEN_MASK = (1L << 24) - 1;
    private static final int OP_SHIFT = 48;
    private static final int BUFFER_GROUP = 0;
    private static final int[] NEEDED = {Ring.OP_EPOLL_WAIT, Ring.OP_ACCEPT, Ring.OP_RECV, Ring.OP_SEND,
            Ring.OP_SENDMSG, Ring.OP_ASYNC_CANCEL, Ring.OP_POLL_ADD};
    private static final String[] NEEDED_NAMES = {"EPOLL_WAIT (Linux 6.15+)", "ACCEPT", "RECV", "SEND",
            "SENDMSG", "ASYNC_CANCEL", "POLL_ADD"};

    private final Ring ring;
    private final Probe probe;
    private final BufferRing buffers;
    private final int epfd;
    private final MemorySegment enterArg;
    private final MemorySegment enterTs;
    private MemorySegment events;
    private int maxEvents;
    private boolean waitInFlight;
    private int waitResult;
    private boolean closed;
    /** The last enter failed in a way no retry mends (the ring fd no longer names this ring, ...). */
    private boolean lost;

    // owners: slot -> handler and generation; free slots in a LIFO list
    private CompletionHandler[] owners = new CompletionHandler[64];
    private int[] generations = new int[64];
    private int[] nextFree = new int[64];
    private int freeHead = -1;
    private int slotsUsed;

    // CQEs copied out of the ring by the last await, dispatched by dispatch()
    private long[] cqeUserData = new long[256];
    private int[] cqeRes = new int[256];
    private int[] cqeFlags = new int[256];
    private int cqeCount;
    /** Dispatch passes so far: owners that ration work per round compare it. */
    private int rounds;

    // counters (single writer: the ring's thread)
    private long enters;
    private long sqesSubmitted;
    private long cqesReaped;
    private long staleCqes;
    private long interrupted;
    private Runnable onInterrupt = () -> {};
    private long earlyFlushes;
    private long bufferRefills;
    private long buffersExhausted;
    private long cancels;
    /** Buffers recycled since the last publish. */
    private int recycled;

    private TransportRing(Ring ring, Probe probe, BufferRing buffers, Arena arena, int epfd, MemorySegment events,
                          int maxEvents) {
        this.ring = ring;
        this.probe = probe;
        this.buffers = buffers;
        this.epfd = epfd;
        this.enterArg = arena.allocate(io_uring_getevents_arg.layout());
        this.enterTs = arena.allocate(__kernel_timespec.layout());
        io_uring_getevents_arg.ts(enterArg, enterTs.address());
        setEvents(events, maxEvents);
    }

    /**
     * Creates the ring and its provided buffers on the calling thread, which alone may use it.
     *
     * @throws EpollBatch.UnavailableException with a one-line reason: io_uring disabled, setup
     *     refused, no probe, an opcode missing, no {@code EXT_ARG}, or the buffer ring refused
     */
    public static TransportRing open(int epfd, MemorySegment events, int maxEvents, Arena arena, Options options)
            throws EpollBatch.UnavailableException {
        String off = UringSupport.disabledBySysctl(options.disabledSysctl());
        if (off != null) {
            throw new EpollBatch.UnavailableException(off, null);
        }
        var calls = new UringCalls(arena);
        Ring ring;
        try {
            ring = UringSupport.open(calls, arena, options.entries(), options.setupFlags());
        } catch (SyscallException e) {
            throw new EpollBatch.UnavailableException(UringSupport.reason(e), e);
        }
        try {
            Probe probe = options.probeView().apply(ring.probe());
            for (int i = 0; i < NEEDED.length; i++) {
                if (!probe.supports(NEEDED[i])) {
                    throw new EpollBatch.UnavailableException("io_uring lacks IORING_OP_" + NEEDED_NAMES[i]
                            + "; probe's last op is " + probe.lastOp(), null);
                }
            }
            if ((ring.features() & Ring.FEAT_EXT_ARG) == 0) {
                throw new EpollBatch.UnavailableException("io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11+)", null);
            }
            // Multishot accept (5.19), multishot receive and provided-buffer rings (6.0) are older
            // than EPOLL_WAIT (6.15), which the probe has confirmed; the buffer ring is still
            // registered here, so a refusal falls back instead of failing the first receive.
            BufferRing buffers;
            try {
                buffers = BufferRing.register(calls, ring, arena, BUFFER_GROUP, options.bufferCount(),
                        options.bufferSize());
            } catch (SyscallException e) {
                throw new EpollBatch.UnavailableException("io_uring provided-buffer ring refused: " + e.getMessage(), e);
            }
            return new TransportRing(ring, probe, buffers, arena, epfd, events, maxEvents);
        } catch (SyscallException e) {
            ring.close();
            throw new EpollBatch.UnavailableException("io_uring probe refused: " + e.getMessage(), e);
        } catch (EpollBatch.UnavailableException | RuntimeException e) {
            ring.close();
            throw e;
        }
    }

    /** Points the wait at another events array; only while no wait is in flight. */
    public void setEvents(MemorySegment events, int maxEvents) {
        if (waitInFlight) {
            throw new IllegalStateException("the epoll wait is in flight");
        }
        this.events = events;
        this.maxEvents = maxEvents;
    }

    /** {@return whether the epoll wait is in flight} */
    public boolean waitInFlight() {
        return waitInFlight;
    }

    /**
     * Fills a {@code struct msghdr} with no name and no control data, gathering {@code iovCount}
     * iovecs at {@code iov}.
     */
    public static void msghdr(MemorySegment header, MemorySegment iov, int iovCount) {
        header.fill((byte) 0);
        msghdr.msg_iov(header, iov);
        msghdr.msg_iovlen(header, iovCount);
    }

    // ------------------------------------------------------------------ owners and tokens

    /** {@return a slot for {@code owner}, for its tokens} */
    public int register(CompletionHandler owner) {
        int slot;
        if (freeHead >= 0) {
            slot = freeHead;
            freeHead = nextFree[slot];
        } else {
            if (slotsUsed == owners.length) {
                if (slotsUsed > SLOT_MASK) {
                    throw new IllegalStateException("too many completion owners: " + slotsUsed);
                }
                int n = owners.length * 2;
                owners = Arrays.copyOf(owners, n);
                generations = Arrays.copyOf(generations, n);
                nextFree = Arrays.copyOf(nextFree, n);
            }
            slot = slotsUsed++;
        }
        owners[slot] = owner;
        return slot;
    }

    /**
     * Gives {@code slot} back: its generation moves on, so a CQE with an older token is dropped.
     * Call it once none of the owner's ops is in flight.
     */
    public void unregister(int slot) {
        owners[slot] = null;
        generations[slot] = (int) ((generations[slot] + 1) & GEN_MASK);
        nextFree[slot] = freeHead;
        freeHead = slot;
    }

    /**
     * {@return the {@code user_data} for an op of the owner in {@code slot}: op kind, the slot's
     * generation and the slot; never an fd, never with the top bit (the wait's tag)}
     *
     * @param op the owner's op kind, 0 to 127
     */
    public long token(int slot, int op) {
        return ((long) op << OP_SHIFT) | ((long) generations[slot] << GEN_SHIFT) | slot;
    }

    // ------------------------------------------------------------------ submission

    /** {@return the ring, for its {@code prep*} methods} */
    public Ring ring() {
        return ring;
    }

    /**
     * {@return whether the kernel supports {@code opcode}, as the probe (and the options' probe
     * view) reported it} For the optional ops ({@link Ring#OP_SHUTDOWN}, {@link Ring#OP_CONNECT}),
     * whose owners fall back to the plain syscall where one is missing; the ops the transport
     * cannot do without were checked by {@link #open}.
     */
    public boolean supports(int opcode) {
        return probe.supports(opcode);
    }

    /** {@return the provided receive buffers} */
    public BufferRing buffers() {
        return buffers;
    }

    /** {@return the provided-buffer group for {@link Ring#prepRecvMultishot}} */
    public int bufferGroup() {
        return BUFFER_GROUP;
    }

    /**
     * Takes the next SQE (zeroed) for an op; when the SQ is full, what is queued is submitted
     * first, without waiting.
     *
     * @return the SQE for the {@code prep*} methods
     */
    public long sqe() {
        if (closed) {
            throw new IllegalStateException("TransportRing closed" + (lost ? " (lost)" : ""));
        }
        long sqe = ring.nextSqe();
        if (sqe < 0) {
            earlyFlushes++;
            submitOnly();
            sqe = ring.nextSqe();
            if (sqe < 0) {
                throw new IllegalStateException("io_uring SQ full after a submit");
            }
        }
        return sqe;
    }

    private void submitOnly() {
        int pending = ring.sqPending();
        enters++;
        buffersPublished();
        int r = ring.enter(0, 0, MemorySegment.NULL, 0, false);
        if (r > 0) {
            sqesSubmitted += Math.min(r, pending);
        }
    }

    /** A provided buffer handed out by a receive CQE goes back (published at the next enter). */
    public void recycle(int bid) {
        buffers.recycle(bid);
        recycled++;
    }

    /** Counts a receive that ended for want of buffers ({@code ENOBUFS}). */
    public void countBuffersExhausted() {
        buffersExhausted++;
    }

    /** Counts an {@code ASYNC_CANCEL} submitted. */
    public void countCancel() {
        cancels++;
    }

    private void buffersPublished() {
        if (recycled > 0) {
            buffers.publish();
            recycled = 0;
            bufferRefills++;
        }
    }

    // ------------------------------------------------------------------ the round

    /**
     * Submits what is queued with the epoll wait (re-armed if it completed), waits at most
     * {@code timeoutNanos} ({@code -1}: no limit, {@code 0}: poll) for a CQE of any kind, and
     * reaps every CQE. EINTR is retried for the time left.
     *
     * @return the number of epoll events in the events array (0 unless the wait completed)
     * @throws SyscallException if {@code io_uring_enter} fails otherwise
     */
    public int await(long timeoutNanos) throws SyscallException {
        if (closed) {
            throw new IllegalStateException("TransportRing closed");
        }
        if (!waitInFlight) {
            long sqe = sqe();
            ring.prepEpollWait(sqe, epfd, events.address(), maxEvents, TAG_WAIT);
            waitInFlight = true;
        }
        buffersPublished();
        cqeCount = 0;
        waitResult = NO_RESULT;
        long deadline = timeoutNanos > 0 ? System.nanoTime() + timeoutNanos : 0;
        long left = timeoutNanos;
        while (true) {
            int pending = ring.sqPending();
            int r = enter(left);
            if (r > 0) {
                sqesSubmitted += Math.min(r, pending);
            }
            reap();
            if (cqeCount > 0 || waitResult != NO_RESULT || timeoutNanos == 0) {
                break;
            }
            if (r == -Errno.EINTR) {
                interrupted++;
                onInterrupt.run(); // now: an idle reactor may wait on for long
                if (timeoutNanos > 0) {
                    left = Math.max(0, deadline - System.nanoTime());
                }
                continue;
            }
            if (r == -ETIME || r >= 0) {
                // r >= 0: the SQEs went in and the wait timed out or was cut short; the caller
                // loops again anyway.
                break;
            }
            lost = isFatal(r);
            throw new SyscallException("io_uring_enter(transport)", ring.fd(), -r);
        }
        int n = waitResult;
        if (n == NO_RESULT || n == -ECANCELED) {
            return 0; // still armed
        }
        if (n < 0) {
            throw new SyscallException("io_uring epoll_wait", epfd, -n);
        }
        return n;
    }

    /**
     * Submits what is queued (cancels of closing owners) and waits at most {@code timeoutNanos}
     * for a CQE, without arming the epoll wait: for a reactor whose loop has stopped (its epoll
     * may be the reason). The CQEs go to {@link #dispatch} as usual.
     *
     * @return what the enter returned (SQEs consumed, or {@code -errno})
     */
    public int drain(long timeoutNanos) {
        if (closed) {
            return 0;
        }
        buffersPublished();
        // No reset of cqeCount: CQEs reaped by an await that then threw (its epoll wait failed)
        // were never dispatched; they go out with these, or their owners' closes would wait forever.
        int pending = ring.sqPending();
        int r = enter(timeoutNanos);
        if (r > 0) {
            sqesSubmitted += Math.min(r, pending);
        }
        lost |= isFatal(r);
        reap();
        return r;
    }

    /**
     * {@return whether an enter's result says the ring cannot be used again}: any error but a
     * signal ({@code EINTR}), the timeout ({@code ETIME}) and a full completion queue or a lack of
     * memory for the moment ({@code EBUSY}, {@code EAGAIN}).
     */
    private static boolean isFatal(int r) {
        return r < 0 && r != -Errno.EINTR && r != -ETIME && r != -EBUSY && r != -Errno.EAGAIN;
    }

    /** {@return whether an enter failed in a way no retry mends; {@link #abandon} is what is left} */
    public boolean lost() {
        return lost;
    }

    /**
     * For a {@linkplain #lost() lost} ring: unmaps it and closes its fd (so the kernel cancels
     * every request of the ring and runs none of their completions), then tells every owner
     * ({@link CompletionHandler#ringLost}) that its ops are over. Nothing may be submitted
     * afterwards; {@link #close()} is then a no-op. Every owner is told even if one throws; the
     * first exception is rethrown afterwards.
     *
     * @return the owners told
     */
    public int abandon() {
        if (closed) {
            return 0;
        }
        closed = true;
        lost = true;
        waitInFlight = false;
        cqeCount = 0;
        ring.close(); // the buffer group goes with the ring: there is nothing to unregister
        RuntimeException failure = null;
        int told = 0;
        for (int slot = 0; slot < slotsUsed; slot++) {
            CompletionHandler owner = owners[slot];
            if (owner == null) {
                continue;
            }
            told++;
            try {
                owner.ringLost();
            } catch (RuntimeException e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        if (failure != null) {
            throw failure;
        }
        return told;
    }

    private int enter(long timeoutNanos) {
        enters++;
        if (timeoutNanos == 0) {
            return ring.enter(0, Ring.ENTER_GETEVENTS, MemorySegment.NULL, 0, false);
        }
        if (timeoutNanos < 0) {
            return ring.enter(1, 0, MemorySegment.NULL, 0, true);
        }
        __kernel_timespec.tv_sec(enterTs, timeoutNanos / 1_000_000_000L);
        __kernel_timespec.tv_nsec(enterTs, timeoutNanos % 1_000_000_000L);
        return ring.enter(1, Ring.ENTER_EXT_ARG, enterArg, io_uring_getevents_arg.layout().byteSize(), true);
    }

    private void reap() {
        int n = ring.cqReady();
        for (int i = 0; i < n; i++) {
            long ud = ring.cqeUserData(i);
            int res = ring.cqeRes(i);
            if (ud == TAG_WAIT) {
                waitInFlight = false;
                // EINTR from the wait itself: nothing ready, re-armed next round
                waitResult = res == -Errno.EINTR ? 0 : res;
                continue;
            }
            if (cqeCount == cqeUserData.length) {
                int m = cqeCount * 2;
                cqeUserData = Arrays.copyOf(cqeUserData, m);
                cqeRes = Arrays.copyOf(cqeRes, m);
                cqeFlags = Arrays.copyOf(cqeFlags, m);
            }
            cqeUserData[cqeCount] = ud;
            cqeRes[cqeCount] = res;
            cqeFlags[cqeCount] = ring.cqeFlags(i);
            cqeCount++;
        }
        if (n > 0) {
            ring.cqAdvance(n);
            cqesReaped += n;
        }
    }

    /**
     * Hands the CQEs of the last {@link #await} to their owners; a CQE whose generation does not
     * match its slot's is dropped and counted. Every CQE is delivered even if an owner throws
     * (an owner counts its ops in flight by them); the first exception is rethrown afterwards.
     *
     * @return the CQEs delivered
     */
    public int dispatch() {
        rounds++;
        Throwable failure = null;
        int delivered = 0;
        int n = cqeCount;
        for (int i = 0; i < n; i++) {
            long ud = cqeUserData[i];
            int slot = (int) (ud & SLOT_MASK);
            int gen = (int) ((ud >>> GEN_SHIFT) & GEN_MASK);
            CompletionHandler owner = slot < slotsUsed ? owners[slot] : null;
            if (owner == null || generations[slot] != gen) {
                staleCqes++;
                continue;
            }
            delivered++;
            try {
                owner.onCompletion((int) (ud >>> OP_SHIFT) & 0x7F, cqeRes[i], cqeFlags[i]);
            } catch (RuntimeException | Error e) {
                if (failure == null) {
                    failure = e;
                }
            }
        }
        cqeCount = 0;
        if (failure instanceof RuntimeException e) {
            throw e;
        }
        if (failure instanceof Error e) {
            throw e;
        }
        return delivered;
    }

    /**
     * {@return the number of the current (or last) {@link #dispatch} pass} A CQE handed over in
     * one pass sees one value: an owner rations what it takes per round by it (the receive budget).
     */
    public int round() {
        return rounds;
    }

    /** {@return CQEs waiting for {@link #dispatch}} */
    public int pendingCompletions() {
        return cqeCount;
    }

    // ------------------------------------------------------------------ counters

    /** {@return io_uring_enter calls} */
    public long enters() { return enters; }

    /** {@return SQEs the kernel consumed} */
    public long sqesSubmitted() { return sqesSubmitted; }

    /** {@return CQEs reaped (the wait's included)} */
    public long cqesReaped() { return cqesReaped; }

    /** {@return CQEs dropped because their token's generation was stale} */
    public long staleCqes() { return staleCqes; }

    /** {@return enters interrupted by a signal and retried} */
    public long interrupted() { return interrupted; }

    /** Sets what runs (on the ring's thread) each time a signal interrupts a wait, which is then retried. */
    public void onInterrupt(Runnable listener) {
        this.onInterrupt = listener;
    }

    /** {@return submits forced by a full SQ} */
    public long earlyFlushes() { return earlyFlushes; }

    /** {@return publishes that handed recycled buffers back to the kernel} */
    public long bufferRefills() { return bufferRefills; }

    /** {@return receives ended by ENOBUFS (the buffer ring was empty)} */
    public long buffersExhausted() { return buffersExhausted; }

    /** {@return ASYNC_CANCELs submitted} */
    public long cancels() { return cancels; }

    /**
     * Cancels the wait if in flight and reaps until its CQE is in (bounded), so the kernel writes
     * nothing into the events array afterwards; unregisters the buffers; unmaps the ring and closes
     * its fd. Ops of owners still in flight are cancelled by the kernel with the ring. A lost ring
     * (or one that fails here) is {@linkplain #abandon abandoned} instead. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (lost) {
            abandon();
            return;
        }
        if (waitInFlight) {
            long sqe = ring.nextSqe();
            if (sqe >= 0) {
                ring.prepCancel(sqe, TAG_WAIT, 0, 0);
                for (int guard = 0; waitInFlight && guard < 100; guard++) {
                    int r = ring.enter(1, 0, MemorySegment.NULL, 0, true);
                    if (isFatal(r)) {
                        lost = true;
                        abandon();
                        return;
                    }
                    reapWaitOnly();
                }
            }
        }
        closed = true;
        buffers.close();
        ring.close();
    }

    private void reapWaitOnly() {
        int n = ring.cqReady();
        for (int i = 0; i < n; i++) {
            if (ring.cqeUserData(i) == TAG_WAIT) {
                waitInFlight = false;
            }
        }
        if (n > 0) {
            ring.cqAdvance(n);
        }
    }
}
