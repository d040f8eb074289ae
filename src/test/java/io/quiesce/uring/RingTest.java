package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static io.quiesce.sys.raw.Syscalls.*;
import static io.quiesce.sys.raw.TestSyscalls.*;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/** The raw ring on the real kernel: setup, probe, SQE/CQE round trips, per-op errors. */
@ExtendWith(NoFdLeaks.class)
class RingTest {
    private final Arena arena = Arena.ofConfined();
    private final Syscalls sys = new Syscalls(arena);
    private final List<Integer> opened = new ArrayList<>();
    private Ring ring;

    /** Skips only where the machine switched io_uring off; anything else must work. */
    static void assumeIoUringEnabled() throws Exception {
        Path p = UringSupport.DISABLED_SYSCTL;
        assumeFalse(Files.exists(p) && Files.readString(p).strip().equals("2"),
                "io_uring disabled by " + p);
    }

    @BeforeEach
    void open() throws Exception {
        assumeIoUringEnabled();
        ring = UringSupport.open(new UringCalls(arena), arena, 8, UringSupport.SETUP_FLAGS);
    }

    @AfterEach
    void close() {
        if (ring != null) {
            ring.close();
        }
        opened.forEach(sys::close);
        arena.close();
    }

    private int track(int fd) {
        assertTrue(fd >= 0, () -> "call failed: " + Errno.name(-fd));
        opened.add(fd);
        return fd;
    }

    /** Submits what is filled and reaps {@code n} CQEs: user_data → res. */
    private Map<Long, Integer> submitAndReap(int n) {
        int r = ring.enter(n, 0, MemorySegment.NULL, 0, true);
        assertTrue(r >= 0, () -> "io_uring_enter: " + Errno.name(-r));
        var out = new HashMap<Long, Integer>();
        int ready = ring.cqReady();
        assertEquals(n, ready, "CQEs posted");
        for (int i = 0; i < ready; i++) {
            out.put(ring.cqeUserData(i), ring.cqeRes(i));
        }
        ring.cqAdvance(ready);
        assertEquals(0, ring.cqReady());
        return out;
    }

    @Test
    void probeListsEpollCtlAndEpollWaitOnThisKernel() throws SyscallException {
        Probe probe = ring.probe();
        assertTrue(probe.supports(Ring.OP_NOP));
        assertTrue(probe.supports(Ring.OP_EPOLL_CTL), "IORING_OP_EPOLL_CTL (5.6+)");
        assertTrue(probe.supports(Ring.OP_EPOLL_WAIT), "IORING_OP_EPOLL_WAIT (6.15+), last op "
                + probe.lastOp());
        assertTrue(probe.supports(Ring.OP_LINK_TIMEOUT));
        assertFalse(probe.supports(255), "no opcode 255");
        assertFalse(probe.without(Ring.OP_EPOLL_WAIT).supports(Ring.OP_EPOLL_WAIT));
    }

    @Test
    void setupTakesSingleIssuerAndDeferTaskrunOnThisKernel() {
        int want = Ring.SETUP_SINGLE_ISSUER | Ring.SETUP_DEFER_TASKRUN | Ring.SETUP_SUBMIT_ALL;
        assertEquals(want, ring.setupFlags() & want, "first flag set of the chain accepted");
        assertTrue((ring.features() & Ring.FEAT_SINGLE_MMAP) != 0);
        assertTrue((ring.features() & Ring.FEAT_EXT_ARG) != 0);
        assertEquals(8, ring.sqEntries());
        assertTrue(ring.cqEntries() >= ring.sqEntries());
    }

    @Test
    void ringFdIsCloseOnExec() {
        int flags = TestSyscalls.current().fcntl(ring.fd(), F_GETFD, 0);
        assertTrue(flags >= 0);
        assertEquals(FD_CLOEXEC, flags & FD_CLOEXEC, "io_uring_setup installs O_CLOEXEC");
    }

    @Test
    void unknownSetupFlagIsRefusedWithEinvalNamingTheCall() {
        var e = assertThrows(SyscallException.class,
                () -> Ring.open(new UringCalls(arena), arena, 8, 1 << 31));
        assertEquals(Errno.EINVAL, e.errno());
        assertTrue(e.getMessage().contains("io_uring_setup"), e.getMessage());
    }

    @Test
    void nopRoundTripCarriesUserData() {
        long ud = 0xCAFE_F00D_1234_5678L;
        ring.prepNop(ring.nextSqe(), ud);
        assertEquals(1, ring.sqPending());
        assertEquals(Map.of(ud, 0), submitAndReap(1));
        assertEquals(0, ring.sqPending());
        // The ring wraps: more round trips than entries reuse every slot.
        for (int i = 0; i < 3 * ring.sqEntries(); i++) {
            ring.prepNop(ring.nextSqe(), i);
            assertEquals(Map.of((long) i, 0), submitAndReap(1));
        }
    }

    @Test
    void fullSqRefusesAnotherSqe() {
        for (int i = 0; i < ring.sqEntries(); i++) {
            assertTrue(ring.nextSqe() >= 0);
        }
        assertEquals(-1, ring.nextSqe());
        for (int i = 0; i < ring.sqEntries(); i++) {
            ring.prepNop((long) i * 64, i); // refill as NOPs so the enter below is valid
        }
        assertEquals(ring.sqEntries(), submitAndReap(ring.sqEntries()).size());
    }

    @Test
    void epollCtlAddThroughAnSqeIsVisibleToARealEpoll() {
        int ep = track(sys.epollCreate());
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        assertEquals(8, sys.eventfdWrite(efd, 1));
        var ev = arena.allocate(EPOLL_EVENT_SIZE);
        long token = 0x7788_0000_0000_0042L;
        ev.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, EPOLLIN);
        ev.set(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET, token);
        ring.prepEpollCtl(ring.nextSqe(), ep, EPOLL_CTL_ADD, efd, ev.address(), 1);
        assertEquals(Map.of(1L, 0), submitAndReap(1));

        var out = arena.allocate(EPOLL_EVENT_SIZE * 4);
        assertEquals(1, sys.epollWait(ep, out, 4, 0), "plain epoll_wait sees the ADD");
        assertEquals(token, out.get(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET));
        // and a second ADD of the same fd is the kernel's EEXIST, in the CQE
        ring.prepEpollCtl(ring.nextSqe(), ep, EPOLL_CTL_ADD, efd, ev.address(), 2);
        assertEquals(Map.of(2L, -Errno.EEXIST), submitAndReap(1));
    }

    @Test
    void badOpInABatchFailsAloneAndTheOthersComplete() {
        int ep = track(sys.epollCreate());
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        var ev = arena.allocate(EPOLL_EVENT_SIZE);
        ev.set(java.lang.foreign.ValueLayout.JAVA_INT, 0, EPOLLIN);
        ring.prepNop(ring.nextSqe(), 1);
        ring.prep(ring.nextSqe(), 255, -1, 0, 0, 0, 2);              // no such opcode
        ring.prepEpollCtl(ring.nextSqe(), ep, EPOLL_CTL_ADD, 1_000_000, ev.address(), 3); // bad fd
        ring.prepEpollCtl(ring.nextSqe(), ep, EPOLL_CTL_ADD, efd, ev.address(), 4);
        ring.prepNop(ring.nextSqe(), 5);
        var res = submitAndReap(5);
        assertEquals(0, res.get(1L));
        assertEquals(-Errno.EINVAL, res.get(2L), "unknown opcode");
        assertEquals(-Errno.EBADF, res.get(3L), "ADD of a closed fd");
        assertEquals(0, res.get(4L), "the ADD after the failures still ran");
        assertEquals(0, res.get(5L));
        assertEquals(-Errno.EEXIST, sys.epollCtl(ep, EPOLL_CTL_ADD, efd, EPOLLIN, 0),
                "the kernel holds the registration the batch made");
    }
}
