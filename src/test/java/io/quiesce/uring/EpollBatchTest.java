package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static io.quiesce.sys.raw.Syscalls.*;
import static io.quiesce.sys.raw.TestSyscalls.*;
import static org.junit.jupiter.api.Assertions.*;

/** The batched wait on the real kernel: ops and wait in one enter, per-op results, fallbacks. */
@ExtendWith(NoFdLeaks.class)
class EpollBatchTest {
    private static final int MAX = 16;
    private final Arena arena = Arena.ofConfined();
    private final Syscalls sys = new Syscalls(arena);
    private final List<Integer> opened = new ArrayList<>();
    private final MemorySegment events = arena.allocate(EPOLL_EVENT_SIZE * MAX, 8);
    private int ep;
    private EpollBatch batch;

    @BeforeEach
    void setUp() throws Exception {
        RingTest.assumeIoUringEnabled();
        ep = track(sys.epollCreate());
    }

    @AfterEach
    void tearDown() {
        if (batch != null) {
            batch.close();
        }
        opened.forEach(sys::close);
        arena.close();
    }

    private int track(int fd) {
        assertTrue(fd >= 0, () -> "call failed: " + Errno.name(-fd));
        opened.add(fd);
        return fd;
    }

    private EpollBatch open(EpollBatch.Options options) throws Exception {
        batch = EpollBatch.open(ep, events, MAX, arena, options);
        return batch;
    }

    private long token(int i) {
        return events.get(U64_UNALIGNED, i * EPOLL_EVENT_SIZE + EPOLL_EVENT_DATA_OFFSET);
    }

    @ParameterizedTest
    @EnumSource(EpollBatch.TimeoutMode.class)
    void addAndWaitTravelInOneEnter(EpollBatch.TimeoutMode mode) throws Exception {
        open(EpollBatch.Options.defaults().withTimeoutMode(mode));
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(8, sys.eventfdWrite(efd, 1));
        assertEquals(0, batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN, 0xABCDL));
        assertEquals(1, batch.submitAndWait(0));
        assertEquals(0xABCDL, token(0));
        assertEquals(1, batch.ctlCount());
        assertEquals(0, batch.ctlResult(0));
        assertEquals(1, batch.enters(), "one io_uring_enter carried the ADD and the wait");
        assertEquals(1, batch.syscallsSaved(), "plain epoll: epoll_ctl + epoll_wait");
    }

    @Test
    void eachOpReportsItsOwnErrorAndTheOthersApply() throws Exception {
        open(EpollBatch.Options.defaults());
        int a = track(sys.eventfd(0, EFD_NONBLOCK));
        int b = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, a, EPOLLIN, 1));
        int addA = batch.queueCtl(EPOLL_CTL_ADD, a, EPOLLIN, 1);   // already there
        int modB = batch.queueCtl(EPOLL_CTL_MOD, b, EPOLLIN, 2);   // not there
        int addB = batch.queueCtl(EPOLL_CTL_ADD, b, EPOLLIN, 2);
        int delBad = batch.queueCtl(EPOLL_CTL_DEL, 1_000_000, 0, 0);
        assertEquals(0, batch.submitAndWait(0));
        assertEquals(-Errno.EEXIST, batch.ctlResult(addA), "the seed maps this to a MOD");
        assertEquals(-Errno.ENOENT, batch.ctlResult(modB), "the seed maps this to an ADD");
        assertEquals(0, batch.ctlResult(addB), "applied despite the failures before it");
        assertEquals(-Errno.EBADF, batch.ctlResult(delBad));
        assertEquals(8, sys.eventfdWrite(b, 1));
        batch.clearResults();
        assertEquals(1, batch.submitAndWait(0));
        assertEquals(2L, token(0));
    }

    /**
     * {@code epoll-semantics-ofd-dup-fork.txt}: a dup keeps a registration alive after
     * {@code close}. A DEL queued before {@code submitAndWait} returns is applied by then, so
     * closing the fd afterwards leaves no ghost that the dup's readiness could fire.
     */
    @Test
    void delIsAppliedBeforeSubmitAndWaitReturnsSoNoGhostOutlivesClose() throws Exception {
        open(EpollBatch.Options.defaults());
        int[] pair = new int[2];
        assertEquals(0, TestSyscalls.current().socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair));
        int peer = track(pair[1]);
        int dup = track(TestSyscalls.current().dup(pair[0]));
        batch.queueCtl(EPOLL_CTL_ADD, pair[0], EPOLLIN, 7);
        assertEquals(0, batch.submitAndWait(0));
        batch.clearResults();
        int del = batch.queueCtl(EPOLL_CTL_DEL, pair[0], 0, 0);
        assertEquals(0, batch.submitAndWait(0));
        assertEquals(0, batch.ctlResult(del));
        assertEquals(0, sys.close(pair[0]));              // the dup keeps the file open
        var buf = arena.allocate(1);
        assertEquals(1, sys.write(peer, buf, 1));          // the file becomes readable
        batch.clearResults();
        assertEquals(0, batch.submitAndWait(TimeUnit.MILLISECONDS.toNanos(20)),
                "no event from a ghost registration");
        assertEquals(0, sys.epollWait(ep, events, MAX, 0), "plain epoll agrees");
        assertNotEquals(-1, dup);
    }

    @ParameterizedTest
    @EnumSource(EpollBatch.TimeoutMode.class)
    void nothingReadyTimesOutWithZeroEventsAndALaterEventStillArrives(EpollBatch.TimeoutMode mode)
            throws Exception {
        open(EpollBatch.Options.defaults().withTimeoutMode(mode));
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN, 9);
        assertEquals(0, batch.submitAndWait(TimeUnit.MILLISECONDS.toNanos(5)));
        assertEquals(0, batch.ctlResult(0));
        assertEquals(mode == EpollBatch.TimeoutMode.ENTER_ARG, batch.waitInFlight(),
                "the enter's timeout leaves the wait armed; a link timeout cancels it");
        batch.clearResults();
        assertEquals(0, batch.submitAndWait(0));
        assertEquals(8, sys.eventfdWrite(efd, 1));
        assertEquals(1, batch.submitAndWait(TimeUnit.SECONDS.toNanos(10)));
        assertEquals(9L, token(0));
        assertFalse(batch.waitInFlight());
    }

    /** A timeout that runs out before the enter (1 ns) must still hand the wait to the kernel. */
    @ParameterizedTest
    @EnumSource(EpollBatch.TimeoutMode.class)
    void aTimeoutShorterThanTheCallStillSubmitsEverything(EpollBatch.TimeoutMode mode)
            throws Exception {
        open(EpollBatch.Options.defaults().withTimeoutMode(mode));
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, efd, EPOLLIN, 3));
        for (int i = 0; i < 3; i++) { // no ops queued: the wait is all there is to submit
            assertEquals(0, batch.submitAndWait(1));
            assertEquals(0, batch.unsubmitted(), "nothing left in the SQ after a round");
            batch.clearResults();
        }
        assertEquals(8, sys.eventfdWrite(efd, 1));
        int got = 0;
        for (int i = 0; i < 1000 && got == 0; i++) { // each round enters, so the event is seen
            got = batch.submitAndWait(1);
        }
        assertEquals(1, got);
        assertEquals(3L, token(0));
    }

    /** The eventfd wakeup path: another thread's write ends a wait without a timeout. */
    @ParameterizedTest
    @EnumSource(EpollBatch.TimeoutMode.class)
    void anotherThreadsEventfdWriteWakesAnUnboundedWait(EpollBatch.TimeoutMode mode) throws Exception {
        open(EpollBatch.Options.defaults().withTimeoutMode(mode));
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN | EPOLLET, 11);
        var started = new CountDownLatch(1);
        var waker = Thread.ofPlatform().start(() -> {
            try {
                started.await();
                Thread.sleep(20); // let the reactor thread park (correctness holds either way)
            } catch (InterruptedException e) {
                return;
            }
            Syscalls.current().eventfdWrite(efd, 1);
        });
        started.countDown();
        assertEquals(1, batch.submitAndWait(-1));
        assertEquals(11L, token(0));
        waker.join();
    }

    @Test
    void moreOpsThanTheRingHoldsAreFlushedEarlyInOrder() throws Exception {
        var o = EpollBatch.Options.defaults();
        open(new EpollBatch.Options(8, o.timeoutMode(), o.disabledSysctl(), o.setupFlags(),
                o.probeView()));
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(8, sys.eventfdWrite(efd, 1));
        // ADD, then MOD x n, crossing several early flushes: order must hold or a MOD would
        // precede the ADD (ENOENT) or the last mask would not be the one the kernel keeps.
        batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN, 0);
        for (int i = 1; i <= 40; i++) {
            batch.queueCtl(EPOLL_CTL_MOD, efd, EPOLLIN, i);
        }
        assertEquals(1, batch.submitAndWait(0));
        assertTrue(batch.earlyFlushes() > 0);
        assertEquals(41, batch.ctlCount());
        for (int i = 0; i < 41; i++) {
            assertEquals(0, batch.ctlResult(i), "op " + i);
        }
        assertEquals(40L, token(0), "the last MOD's token is the kernel's");
    }

    /** An armed wait that completes inside an early flush keeps its events for the round. */
    @Test
    void eventsOfAWaitCompletedDuringAnEarlyFlushAreReturnedByTheRound() throws Exception {
        var o = EpollBatch.Options.defaults();
        open(new EpollBatch.Options(8, o.timeoutMode(), o.disabledSysctl(), o.setupFlags(),
                o.probeView()));
        int ready = track(sys.eventfd(0, EFD_NONBLOCK));
        int other = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, ready, EPOLLIN | EPOLLET, 77));
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, other, EPOLLIN, 1));
        assertEquals(0, batch.submitAndWait(0));
        assertTrue(batch.waitInFlight(), "armed, nothing ready");
        assertEquals(8, sys.eventfdWrite(ready, 1)); // edge-triggered: reported once only
        batch.clearResults();
        for (int i = 0; i < 20; i++) {
            batch.queueCtl(EPOLL_CTL_MOD, other, (i & 1) == 0 ? EPOLLIN | EPOLLRDHUP : EPOLLIN, 1);
        }
        assertTrue(batch.earlyFlushes() > 0);
        assertEquals(1, batch.submitAndWait(0), "the edge is not lost");
        assertEquals(77L, token(0));
    }

    /** The same random ADD/MOD/DEL sequence through the batch and through epoll_ctl. */
    @Test
    void randomSequencesGiveTheSameKernelStateAsPlainEpollCtl() throws Exception {
        open(EpollBatch.Options.defaults());
        int ep2 = track(sys.epollCreate());
        int n = 6;
        int[] fds = new int[n];
        for (int i = 0; i < n; i++) {
            fds[i] = track(sys.eventfd(0, EFD_NONBLOCK));
        }
        var rnd = new Random(42);
        int[] ops = {EPOLL_CTL_ADD, EPOLL_CTL_MOD, EPOLL_CTL_DEL};
        var plain = new ArrayList<Integer>();
        for (int round = 0; round < 30; round++) {
            plain.clear();
            batch.clearResults();
            for (int k = rnd.nextInt(6); k > 0; k--) {
                int i = rnd.nextInt(n);
                int op = ops[rnd.nextInt(3)];
                long token = ((long) round << 8) | i;
                batch.queueCtl(op, fds[i], EPOLLIN, token);
                plain.add(sys.epollCtl(ep2, op, fds[i], EPOLLIN, token));
            }
            assertTrue(batch.submitAndWait(0) >= 0);
            for (int j = 0; j < plain.size(); j++) {
                assertEquals(plain.get(j), batch.ctlResult(j), "round " + round + " op " + j);
            }
        }
        for (int fd : fds) {
            assertEquals(8, sys.eventfdWrite(fd, 1));
        }
        batch.clearResults();
        int got = batch.submitAndWait(0);
        var fromBatch = new java.util.TreeSet<Long>();
        for (int i = 0; i < got; i++) {
            fromBatch.add(token(i));
        }
        int got2 = sys.epollWait(ep2, events, MAX, 0);
        var fromPlain = new java.util.TreeSet<Long>();
        for (int i = 0; i < got2; i++) {
            fromPlain.add(token(i));
        }
        assertEquals(fromPlain, fromBatch, "same registrations, same tokens");
    }

    @Test
    void growingTheEventsArrayIsRefusedWhileAWaitIsInFlight() throws Exception {
        open(EpollBatch.Options.defaults());
        assertEquals(0, batch.submitAndWait(0));
        assertTrue(batch.waitInFlight());
        var bigger = arena.allocate(EPOLL_EVENT_SIZE * 2 * MAX, 8);
        assertThrows(IllegalStateException.class, () -> batch.setEvents(bigger, 2 * MAX));
        batch.close(); // cancels the wait in flight and closes the ring (NoFdLeaks checks)
        assertThrows(IllegalStateException.class, () -> batch.submitAndWait(0));
    }

    // ---- fallbacks: each path gives a reason, and leaves no ring fd behind ----

    @Test
    void fallsBackWhenTheSysctlDisablesIoUring(@TempDir Path dir) throws Exception {
        Path sysctl = Files.writeString(dir.resolve("io_uring_disabled"), "2\n");
        var o = EpollBatch.Options.defaults();
        var e = assertThrows(EpollBatch.UnavailableException.class, () -> open(
                new EpollBatch.Options(o.entries(), o.timeoutMode(), sysctl, o.setupFlags(), o.probeView())));
        assertTrue(e.getMessage().contains("io_uring_disabled = 2"), e.getMessage());
    }

    @Test
    void fallsBackWhenTheProbeLacksEpollWait() {
        var o = EpollBatch.Options.defaults();
        var e = assertThrows(EpollBatch.UnavailableException.class, () -> open(
                new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(), o.setupFlags(),
                        p -> p.without(Ring.OP_EPOLL_WAIT))));
        assertTrue(e.getMessage().contains("IORING_OP_EPOLL_WAIT"), e.getMessage());
    }

    @Test
    void fallsBackWhenTheProbeLacksEpollCtl() {
        var o = EpollBatch.Options.defaults();
        var e = assertThrows(EpollBatch.UnavailableException.class, () -> open(
                new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(), o.setupFlags(),
                        p -> p.without(Ring.OP_EPOLL_CTL))));
        assertTrue(e.getMessage().contains("IORING_OP_EPOLL_CTL"), e.getMessage());
    }

    @Test
    void fallsBackWhenTheLinkTimeoutModeLacksLinkTimeout() {
        var o = EpollBatch.Options.defaults().withTimeoutMode(EpollBatch.TimeoutMode.LINK_TIMEOUT);
        var e = assertThrows(EpollBatch.UnavailableException.class, () -> open(
                new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(), o.setupFlags(),
                        p -> p.without(Ring.OP_LINK_TIMEOUT))));
        assertTrue(e.getMessage().contains("IORING_OP_LINK_TIMEOUT"), e.getMessage());
    }

    /** What a kernel that refuses setup looks like (here: flags no kernel knows → EINVAL). */
    @Test
    void fallsBackWhenSetupIsRefusedNamingTheCallAndErrno() {
        var o = EpollBatch.Options.defaults();
        var e = assertThrows(EpollBatch.UnavailableException.class, () -> open(
                new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(),
                        List.of(1 << 31), o.probeView())));
        assertTrue(e.getMessage().contains("io_uring_setup") && e.getMessage().contains("EINVAL"),
                e.getMessage());
    }

    @Test
    void olderSetupFlagsAreTriedWhenTheFirstAreRefused() throws Exception {
        var o = EpollBatch.Options.defaults();
        open(new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(),
                List.of(1 << 31, Ring.SETUP_CLAMP), o.probeView()));
        assertEquals(Ring.SETUP_CLAMP, batch.setupFlags());
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(8, sys.eventfdWrite(efd, 1));
        batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN, 5);
        assertEquals(1, batch.submitAndWait(0), "works without DEFER_TASKRUN too");
    }
}
