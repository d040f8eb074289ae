package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.__kernel_timespec;
import io.quiesce.sys.linux.io_uring_getevents_arg;
import io.quiesce.sys.linux.io_uring_sqe;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The seed's {@code epoll_batch} ({@code batching-epoll-ctl.txt}) on a stock kernel: queued
 * {@code epoll_ctl} operations and then one {@code epoll_wait}, carried by one
 * {@code io_uring_enter} as {@code IORING_OP_EPOLL_CTL} SQEs followed by one
 * {@code IORING_OP_EPOLL_WAIT} (Linux 6.15+). The epoll fd stays the reactor's: it is still a
 * real epoll that other code (the eventfd wakeup, a nesting event loop) sees as before.
 *
 * <p><b>Use</b> (one thread — the one that created it — for its whole life):
 * {@link #queueCtl} each change, in the order they must apply; then
 * {@link #submitAndWait(long)}; then read {@link #ctlCount()}/{@link #ctlResult(int)} for the
 * per-op results (0 or {@code -errno}, in queue order: the caller maps {@code EEXIST} on ADD to
 * a MOD and {@code ENOENT} on MOD to an ADD, as the seed does) and the returned count of events
 * in the events segment.
 *
 * <p><b>What it guarantees.</b> When {@code submitAndWait} returns, every queued operation has
 * been applied by the kernel and its result reaped — so a DEL queued before it returns is done
 * before the caller's {@code close(fd)} (never deferred past the close; libuv #4323 is that
 * bug). The kernel copies each op's {@code epoll_event} while preparing the SQE. Operations are
 * issued in queue order; an op that fails (including one the kernel cannot even prepare, with
 * {@code IORING_SETUP_SUBMIT_ALL}) fails alone, except in a round that links its ops in front of
 * a new wait ({@link #linksOpsToWait}): there the ops after it are not run and report
 * {@code -ECANCELED}, for the caller to queue again. When more ops are queued than the ring holds,
 * the first ones go out early; an armed wait that completes then is this round's result, so
 * its events may predate the later ops (the caller's token check drops any for a handle it
 * closed meanwhile).
 *
 * <p><b>The events segment</b> is written by the kernel only while this thread is inside
 * {@code io_uring_enter} (with {@code DEFER_TASKRUN}; without it, on this thread's return from a
 * syscall while a wait is in flight — which is why the wait is only ever in flight between the
 * caller's rounds, never while the caller reads events: see {@link TimeoutMode#ENTER_ARG}).
 *
 * <p><b>Timeouts.</b> {@link TimeoutMode#ENTER_ARG} bounds the enter itself
 * ({@code IORING_ENTER_EXT_ARG}, 5.11+): a wait that times out stays armed and is reaped by a
 * later round (which submits no new one). {@link TimeoutMode#LINK_TIMEOUT} links an
 * {@code IORING_OP_LINK_TIMEOUT} to a newly submitted wait, which cancels it: such a round ends
 * with nothing in flight, at the price of a timer armed and a second CQE. A poll (timeout 0) is
 * the same in both modes. EINTR (a signal, a profiler) is retried with the timeout recomputed
 * from the deadline.
 */
public final class EpollBatch implements AutoCloseable {
    /** How the wait is bounded. */
    public enum TimeoutMode {
        /** {@code io_uring_enter}'s own timeout ({@code IORING_ENTER_EXT_ARG}). */
        ENTER_ARG,
        /** An {@code IORING_OP_LINK_TIMEOUT} linked to the {@code EPOLL_WAIT} SQE. */
        LINK_TIMEOUT
    }

    /**
     * How to build the batch.
     *
     * @param entries SQ size: the most ops one enter carries (more are flushed early)
     * @param timeoutMode how the wait is bounded
     * @param disabledSysctl the io_uring sysctl to honour ({@link UringSupport#DISABLED_SYSCTL})
     * @param setupFlags setup flag sets to try in order ({@link UringSupport#SETUP_FLAGS})
     * @param probeView applied to the kernel's probe before it is checked (identity, except in
     *     tests that force a missing opcode)
     */
    public record Options(int entries, TimeoutMode timeoutMode, Path disabledSysctl,
                          List<Integer> setupFlags, UnaryOperator<Probe> probeView) {
        /** {@return 256 entries, the enter's timeout, the real sysctl and flags, the real probe} */
        public static Options defaults() {
            return new Options(256, TimeoutMode.ENTER_ARG, UringSupport.DISABLED_SYSCTL,
                    UringSupport.SETUP_FLAGS, UnaryOperator.identity());
        }

        /** {@return these options with another timeout mode} */
        public Options withTimeoutMode(TimeoutMode mode) {
            return new Options(entries, mode, disabledSysctl, setupFlags, probeView);
        }
    }

    /** Thrown by {@link #open} when the batch cannot work here; {@link #getMessage()} says why. */
    public static final class UnavailableException extends Exception {
        private static final long serialVersionUID = 1L;

        UnavailableException(String reason, Throwable cause) {
            super(reason, cause);
        }
    }

    private static final int ETIME = LinuxH.ETIME();
    private static final int ECANCELED = LinuxH.ECANCELED();
    private static final int NO_RESULT = Integer.MIN_VALUE;
    private static final long TAG_WAIT = 1L << 62;
    private static final long TAG_TIMEOUT = 1L << 61;
    private static final long TAG_CANCEL = 1L << 60;
    private static final long INDEX_MASK = (1L << 32) - 1;
    /** Slots kept free for the wait and its link timeout. */
    private static final int RESERVED = 2;
    private static final long SQE_SIZE = io_uring_sqe.layout().byteSize();

    private final Ring ring;
    private final int epfd;
    private final TimeoutMode mode;
    private final Probe probe;
    private final MemorySegment ctlEvents; // one epoll_event per SQ slot
    private final MemorySegment linkTs;    // __kernel_timespec for LINK_TIMEOUT
    private final MemorySegment enterArg;  // io_uring_getevents_arg for ENTER_ARG
    private final MemorySegment enterTs;
    private MemorySegment events;
    private int maxEvents;

    private int[] results = new int[64];
    /** SQE handles of the ops queued since the last enter (what a new wait can be linked behind). */
    private long[] unsubmittedSqes = new long[64];
    private int unsubmittedCount;
    private int queued;       // ops queued this round
    private int ctlPending;   // ops submitted whose CQE is not reaped yet
    private boolean waitInFlight;
    private boolean timeoutInFlight;
    private int waitResult;   // res of the wait CQE reaped this round, or NO_RESULT
    private boolean closed;

    // Counters (single writer: the owning thread; read them from it or accept staleness).
    private long enters;
    private long interrupted;
    private Runnable onInterrupt = () -> {};
    private long rounds;
    private long ctlOps;
    private long earlyFlushes;

    private EpollBatch(Ring ring, Arena arena, int epfd, MemorySegment events,
                       int maxEvents, TimeoutMode mode, Probe probe) {
        this.ring = ring;
        this.epfd = epfd;
        this.mode = mode;
        this.probe = probe;
        this.ctlEvents = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * ring.sqEntries(), 8);
        this.linkTs = arena.allocate(__kernel_timespec.layout());
        this.enterArg = arena.allocate(io_uring_getevents_arg.layout());
        this.enterTs = arena.allocate(__kernel_timespec.layout());
        this.waitResult = NO_RESULT;
        io_uring_getevents_arg.ts(enterArg, enterTs.address());
        setEvents(events, maxEvents);
    }

    /**
     * Creates the ring (on the calling thread, which alone may use the batch) and checks that
     * everything the batch needs is there.
     *
     * @param epfd the epoll fd the ops and the wait act on (the caller keeps owning it)
     * @param events where the wait writes its {@code epoll_event}s ({@code maxEvents} of them)
     * @param arena the calling thread's arena for the batch's small structures
     * @throws UnavailableException with a one-line reason: io_uring disabled by sysctl, setup
     *     refused ({@code ENOSYS}, {@code EPERM} from seccomp, ...), no probe, or the probe lacks
     *     {@code EPOLL_CTL}, {@code EPOLL_WAIT} or {@code LINK_TIMEOUT}, or no {@code EXT_ARG}
     */
    public static EpollBatch open(int epfd, MemorySegment events, int maxEvents, Arena arena,
                                  Options options) throws UnavailableException {
        String off = UringSupport.disabledBySysctl(options.disabledSysctl());
        if (off != null) {
            throw new UnavailableException(off, null);
        }
        var calls = new UringCalls(arena);
        Ring ring;
        try {
            ring = UringSupport.open(calls, arena, options.entries(), options.setupFlags());
        } catch (SyscallException e) {
            throw new UnavailableException(UringSupport.reason(e), e);
        }
        try {
            Probe probe = options.probeView().apply(ring.probe());
            String missing = missing(probe, ring, options.timeoutMode());
            if (missing != null) {
                throw new UnavailableException(missing, null);
            }
            return new EpollBatch(ring, arena, epfd, events, maxEvents,
                    options.timeoutMode(), probe);
        } catch (SyscallException e) {
            ring.close();
            throw new UnavailableException("io_uring probe refused: " + e.getMessage(), e);
        } catch (UnavailableException | RuntimeException e) {
            ring.close();
            throw e;
        }
    }

    private static String missing(Probe probe, Ring ring, TimeoutMode mode) {
        if (!probe.supports(Ring.OP_EPOLL_CTL)) {
            return "io_uring lacks IORING_OP_EPOLL_CTL (Linux 5.6+)";
        }
        if (!probe.supports(Ring.OP_EPOLL_WAIT)) {
            return "io_uring lacks IORING_OP_EPOLL_WAIT (Linux 6.15+); probe's last op is "
                    + probe.lastOp();
        }
        if (mode == TimeoutMode.LINK_TIMEOUT && !probe.supports(Ring.OP_LINK_TIMEOUT)) {
            return "io_uring lacks IORING_OP_LINK_TIMEOUT (Linux 5.5+)";
        }
        // Both modes bound some rounds by the enter's timeout (see submitAndWait).
        if ((ring.features() & Ring.FEAT_EXT_ARG) == 0) {
            return "io_uring lacks IORING_FEAT_EXT_ARG (Linux 5.11+)";
        }
        return null;
    }

    /**
     * Points the wait at another events array (the caller grew its own). Only between rounds
     * with no wait in flight — right after a round whose wait completed, e.g. one that filled
     * the array.
     *
     * @throws IllegalStateException if a wait is still in flight (it would write the old array)
     */
    public void setEvents(MemorySegment events, int maxEvents) {
        if (waitInFlight) {
            throw new IllegalStateException("epoll wait in flight on the current events array");
        }
        if (events.byteSize() < maxEvents * Syscalls.EPOLL_EVENT_SIZE) {
            throw new IllegalArgumentException("events segment smaller than maxEvents");
        }
        this.events = events;
        this.maxEvents = maxEvents;
    }

    /**
     * Queues {@code epoll_ctl(epfd, op, fd, {events, data.u64 = token})}, applied by the next
     * {@link #submitAndWait}. When the ring is full the queued ops are submitted (and reaped)
     * at once, in order, by one extra enter.
     *
     * @return the op's index for {@link #ctlResult(int)}
     * @throws SyscallException if that early flush fails as a whole
     */
    public int queueCtl(int op, int fd, int events, long token) throws SyscallException {
        ensureOpen();
        if (ring.sqSpace() <= RESERVED) {
            flushEarly();
        }
        long sqe = ring.nextSqe();
        long ev = (sqe / SQE_SIZE) * Syscalls.EPOLL_EVENT_SIZE; // this SQE's own event slot
        ctlEvents.set(ValueLayout.JAVA_INT, ev, events);
        ctlEvents.set(Syscalls.U64_UNALIGNED, ev + Syscalls.EPOLL_EVENT_DATA_OFFSET, token);
        int index = queued++;
        ctlOps++;
        if (index == results.length) {
            results = Arrays.copyOf(results, index * 2);
        }
        results[index] = Integer.MIN_VALUE;
        ring.prepEpollCtl(sqe, epfd, op, fd, ctlEvents.address() + ev, index);
        if (unsubmittedCount == unsubmittedSqes.length) {
            unsubmittedSqes = Arrays.copyOf(unsubmittedSqes, unsubmittedCount * 2);
        }
        unsubmittedSqes[unsubmittedCount++] = sqe;
        return index;
    }

    private void flushEarly() throws SyscallException {
        earlyFlushes++;
        unsubmittedCount = 0; // these go out alone, unlinked
        int n = ring.sqPending();
        ctlPending += n;
        int r = enterAndReap(ctlPending, -1, true);
        if (r < 0 && r != -Errno.EINTR) {
            throw new SyscallException("io_uring_enter(epoll_ctl x" + n + ")", ring.fd(), -r);
        }
        while (ctlPending > 0) { // an op punted to the kernel's workers completes later
            r = enterAndReap(ctlPending, -1, true);
            if (r < 0 && r != -Errno.EINTR) {
                throw new SyscallException("io_uring_enter(GETEVENTS)", ring.fd(), -r);
            }
        }
    }

    /**
     * {@return whether the next {@link #submitAndWait} with a timeout other than 0 links the ops
     * queued so far in front of a new wait} Then an op that fails breaks the chain: the ops after
     * it and the wait complete at once with {@code -ECANCELED} (to be queued again), so the enter
     * never sleeps on a round whose results need work, and one enter carries ops and sleep. Not
     * when a wait is still armed from an earlier round (there is nothing to link to), nor with
     * {@link TimeoutMode#LINK_TIMEOUT} (the wait already heads a chain of its own).
     */
    public boolean linksOpsToWait() {
        return !waitInFlight && waitResult == NO_RESULT && mode == TimeoutMode.ENTER_ARG;
    }

    /** {@return ops queued and not yet handed to the kernel} */
    public int unsubmitted() {
        return ring.sqPending();
    }

    /**
     * Submits the queued ops and one {@code EPOLL_WAIT} (unless one is still armed from an
     * earlier round) in one {@code io_uring_enter}, and waits for the ops and for events up to
     * {@code timeoutNanos}.
     *
     * <p>A poll ({@code 0}) is one enter with {@code GETEVENTS} and no minimum: it submits, runs
     * the completion work pending for this thread and returns without sleeping (a zero
     * {@code EXT_ARG} timeout would still go through the scheduler). If nothing is ready the
     * wait stays armed, as it does after an enter-bounded wait times out; the next round then
     * submits no new one. A link timeout is attached only when a new wait is submitted with a
     * timeout; otherwise the enter's own timeout bounds the round.
     *
     * @param timeoutNanos {@code < 0} forever, {@code 0} poll, else the longest wait
     * @return the number of events now in the events segment ({@code 0} on timeout), or
     *     {@code -errno} if the enter itself failed or the wait failed (e.g. {@code -EBADF});
     *     after an enter failure the batch should be closed (its ops may be in flight)
     */
    public int submitAndWait(long timeoutNanos) {
        ensureOpen();
        rounds++;
        ctlPending += ring.sqPending();
        // A wait may already have completed inside an early flush of this round's ops: its
        // events are in the array and are this round's result, so no new wait goes out.
        if (!waitInFlight && waitResult == NO_RESULT) {
            if (timeoutNanos != 0 && mode == TimeoutMode.ENTER_ARG) {
                for (int i = 0; i < unsubmittedCount; i++) { // see linksOpsToWait
                    ring.sqeFlags(unsubmittedSqes[i], Ring.SQE_IO_LINK);
                }
            }
            long sqe = ring.nextSqe();
            ring.prepEpollWait(sqe, epfd, events.address(), maxEvents, TAG_WAIT);
            waitInFlight = true;
            if (mode == TimeoutMode.LINK_TIMEOUT && timeoutNanos > 0) {
                ring.sqeFlags(sqe, Ring.SQE_IO_LINK);
                __kernel_timespec.tv_sec(linkTs, timeoutNanos / 1_000_000_000L);
                __kernel_timespec.tv_nsec(linkTs, timeoutNanos % 1_000_000_000L);
                ring.prepLinkTimeout(ring.nextSqe(), linkTs.address(), TAG_TIMEOUT);
                timeoutInFlight = true;
            }
        }
        unsubmittedCount = 0;
        int r;
        if (timeoutNanos == 0) {
            r = enterAndReap(0, -1, false);
            if (r < 0 && r != -Errno.EINTR) {
                return r;
            }
        } else {
            // EINTR (a signal, a profiler) is retried with the time left to the deadline.
            long deadline = System.nanoTime() + timeoutNanos;
            boolean byEnter = timeoutNanos > 0 && !timeoutInFlight;
            boolean entered = false;
            while (waitInFlight) {
                int want = ctlPending + 1 + (timeoutInFlight ? 1 : 0);
                long left = byEnter ? deadline - System.nanoTime() : -1;
                if (byEnter && left <= 0) {
                    // Out of time before the first enter: poll once anyway. What is queued
                    // is handed over (an unsubmitted wait would be miscounted as an op next
                    // round), and with DEFER_TASKRUN an armed wait completes only in an enter.
                    if (!entered) {
                        r = enterAndReap(0, -1, false);
                        if (r < 0 && r != -Errno.EINTR) {
                            return r;
                        }
                    }
                    break;
                }
                r = enterAndReap(want, left, true);
                entered = true;
                if (r < 0 && r != -Errno.EINTR && r != -ETIME) {
                    return r;
                }
                if (r == -ETIME) {
                    break;
                }
            }
        }
        // The ops (and a link timeout) complete before this returns: a DEL is never left in
        // flight past the caller's close(fd). They normally completed inline at submission;
        // one the kernel punted to its workers is waited for here.
        while (ctlPending > 0 || timeoutInFlight) {
            r = enterAndReap(ctlPending + (timeoutInFlight ? 1 : 0), -1, true);
            if (r < 0 && r != -Errno.EINTR) {
                return r;
            }
        }
        int result = waitResult;
        waitResult = NO_RESULT;
        if (result == NO_RESULT || result == -ECANCELED) {
            return 0; // still armed, or cancelled by its link timeout
        }
        return result;
    }

    /**
     * One enter with {@code GETEVENTS} for {@code want} CQEs — bounded by {@code timeoutNanos}
     * through {@code EXT_ARG} when that is {@code >= 0} and {@code want > 0} — then reap.
     */
    private int enterAndReap(int want, long timeoutNanos, boolean blocking) {
        int flags = Ring.ENTER_GETEVENTS;
        long argSize = 0;
        MemorySegment a = MemorySegment.NULL;
        if (want > 0 && timeoutNanos >= 0) {
            __kernel_timespec.tv_sec(enterTs, timeoutNanos / 1_000_000_000L);
            __kernel_timespec.tv_nsec(enterTs, timeoutNanos % 1_000_000_000L);
            flags |= Ring.ENTER_EXT_ARG;
            a = enterArg;
            argSize = io_uring_getevents_arg.layout().byteSize();
        }
        enters++;
        int r = ring.enter(want, flags, a, argSize, blocking);
        if (r == -Errno.EINTR) {
            interrupted++;
            onInterrupt.run();
        }
        reap();
        return r;
    }

    private void reap() {
        int n = ring.cqReady();
        for (int i = 0; i < n; i++) {
            long ud = ring.cqeUserData(i);
            int res = ring.cqeRes(i);
            if (ud == TAG_WAIT) {
                waitResult = res;
                waitInFlight = false;
            } else if (ud == TAG_TIMEOUT) {
                timeoutInFlight = false;
            } else if (ud == TAG_CANCEL) {
                // the cancel's own completion; the wait's comes separately
            } else {
                results[(int) (ud & INDEX_MASK)] = res;
                ctlPending--;
            }
        }
        if (n > 0) {
            ring.cqAdvance(n);
        }
    }

    /** {@return how many ops the last round carried, flushed early ones included} */
    public int ctlCount() {
        return queued;
    }

    /**
     * {@return the result of op {@code index} of the last round: 0, or {@code -errno} (e.g.
     * {@code -EEXIST} for an ADD of a registered fd)}
     */
    public int ctlResult(int index) {
        if (index < 0 || index >= queued) {
            throw new IndexOutOfBoundsException(index);
        }
        return results[index];
    }

    /**
     * Starts the next round: forgets the last round's op results. Call it after reading them
     * and before the next {@link #queueCtl}.
     */
    public void clearResults() {
        queued = 0;
    }

    /** {@return whether an {@code EPOLL_WAIT} is in flight (a round timed out)} */
    public boolean waitInFlight() {
        return waitInFlight;
    }

    /** {@return the opcodes the kernel reported (through the options' probe view)} */
    public Probe probe() {
        return probe;
    }

    /** {@return the ring's setup flags (which fallback step the kernel took)} */
    public int setupFlags() {
        return ring.setupFlags();
    }

    /** {@return {@code io_uring_enter} calls made} */
    public long enters() {
        return enters;
    }

    /** {@return {@link #submitAndWait} calls made} */
    public long rounds() {
        return rounds;
    }

    /** {@return {@code epoll_ctl} ops carried through the ring} */
    public long ctlOps() {
        return ctlOps;
    }

    /**
     * {@return syscalls saved against plain epoll, which costs one {@code epoll_ctl} per op and
     * one wait per round: {@code ctlOps + rounds - enters} (early flushes and EINTR retries
     * count against the saving)}
     */
    public long syscallsSaved() {
        return ctlOps + rounds - enters;
    }

    /**
     * Sets what runs (on the batch's thread) each time a signal interrupts an enter, which is
     * then retried; a blocked wait may retry many times before it returns.
     *
     * @param listener called once per EINTR
     */
    public void onInterrupt(Runnable listener) {
        this.onInterrupt = listener;
    }

    /** {@return enters interrupted by a signal (EINTR) and retried} */
    public long interrupted() {
        return interrupted;
    }

    /** {@return extra enters because more ops were queued than the ring holds} */
    public long earlyFlushes() {
        return earlyFlushes;
    }

    private void ensureOpen() {
        if (closed) {
            throw new IllegalStateException("EpollBatch closed");
        }
    }

    /**
     * Cancels a wait still in flight and reaps its completion (so the kernel writes nothing
     * into the events array afterwards), then unmaps the ring and closes its fd. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (waitInFlight) {
            // Queued ops never submitted are dropped with the ring; only the wait matters.
            long sqe = ring.nextSqe();
            if (sqe >= 0) {
                ring.prep(sqe, Ring.OP_ASYNC_CANCEL, -1, TAG_WAIT, 0, 0, TAG_CANCEL);
                // The wait completes either with events or -ECANCELED; reap until it has.
                // Bounded: a kernel that never completes it must not hang the closer.
                for (int guard = 0; waitInFlight && guard < 100; guard++) {
                    int r = enterAndReap(1, -1, true);
                    if (r < 0 && r != -Errno.EINTR) {
                        break;
                    }
                }
            }
        }
        ring.close();
    }
}
