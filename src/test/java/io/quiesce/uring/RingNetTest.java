package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.iovec;
import io.quiesce.sys.linux.msghdr;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.testing.Signals;
import io.quiesce.uring.UringNet.Cqe;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static io.quiesce.sys.raw.Syscalls.*;
import static io.quiesce.sys.raw.TestSyscalls.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The ring's socket opcodes on the real kernel over loopback TCP: accept (multishot), connect,
 * recv, send, sendmsg, cancel by user_data and by fd, close, shutdown, msg_ring, poll.
 */
@ExtendWith(NoFdLeaks.class)
class RingNetTest {
    private static final int SOCK_CLOEXEC = LinuxH.SOCK_CLOEXEC();
    private static final int ECANCELED = LinuxH.ECANCELED();

    private final Arena arena = Arena.ofConfined();
    private final Syscalls sys = new Syscalls(arena);
    private final TestSyscalls test = new TestSyscalls(arena);
    private final UringNet net = new UringNet(arena, sys);
    private Ring ring;
    private Ring other;

    @BeforeEach
    void open() throws Exception {
        RingTest.assumeIoUringEnabled();
        ring = UringSupport.open(new UringCalls(arena), arena, 8, UringSupport.SETUP_FLAGS);
    }

    @AfterEach
    void close() {
        if (ring != null) {
            ring.close();
        }
        if (other != null) {
            other.close();
        }
        net.closeAll();
        arena.close();
    }

    private MemorySegment bytes(String s) {
        byte[] b = s.getBytes(StandardCharsets.US_ASCII);
        var seg = arena.allocate(b.length);
        MemorySegment.copy(b, 0, seg, ValueLayout.JAVA_BYTE, 0, b.length);
        return seg;
    }

    private static String string(MemorySegment seg, int len) {
        return new String(seg.asSlice(0, len).toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
    }

    private String recvNow(int fd, int max) {
        var buf = arena.allocate(max);
        long n = test.recv(fd, buf, max, MSG_DONTWAIT);
        assertTrue(n >= 0, () -> "recv: " + Errno.name((int) -n));
        return string(buf, (int) n);
    }

    private static Cqe only(List<Cqe> cqes, long userData) {
        var match = cqes.stream().filter(c -> c.userData() == userData).toList();
        assertEquals(1, match.size(), () -> "one CQE with user_data " + userData + " in " + cqes);
        return match.getFirst();
    }

    @Test
    void probeListsTheTransportOpcodesOnThisKernel() throws SyscallException {
        Probe probe = ring.probe();
        for (int op : new int[] {Ring.OP_ACCEPT, Ring.OP_CONNECT, Ring.OP_RECV, Ring.OP_SEND,
                Ring.OP_SENDMSG, Ring.OP_SHUTDOWN, Ring.OP_CLOSE, Ring.OP_MSG_RING,
                Ring.OP_POLL_ADD, Ring.OP_POLL_REMOVE, Ring.OP_ASYNC_CANCEL}) {
            assertTrue(probe.supports(op), "opcode " + op + ", last op " + probe.lastOp());
        }
        assertTrue((ring.features() & Ring.FEAT_FAST_POLL) != 0, "IORING_FEAT_FAST_POLL (5.7+)");
    }

    @Test
    void multishotAcceptYieldsOneCqeWithMoreForEachConnectUntilCancelled() {
        var l = net.listen(SOCK_NONBLOCK);
        ring.prepAccept(ring.nextSqe(), l.fd(), 0, 0, SOCK_CLOEXEC | SOCK_NONBLOCK, true, 7);
        assertEquals(List.of(), net.reap(ring, 0), "armed, nothing to accept yet");

        int connects = 5;
        for (int i = 0; i < connects; i++) {
            net.connect(l);
        }
        var cqes = net.reap(ring, connects);
        assertEquals(connects, cqes.size(), cqes::toString);
        Set<Integer> fds = new HashSet<>();
        for (Cqe c : cqes) {
            assertEquals(7, c.userData());
            assertTrue(c.res() >= 0, c::toString);
            net.track(c.res());
            assertTrue(c.more(), () -> "multishot stays armed: " + c);
            assertTrue(fds.add(c.res()), "a new fd per connection");
            assertEquals(FD_CLOEXEC, test.fcntl(c.res(), F_GETFD, 0) & FD_CLOEXEC, "SOCK_CLOEXEC");
            assertEquals(O_NONBLOCK, test.fcntl(c.res(), F_GETFL, 0) & O_NONBLOCK, "SOCK_NONBLOCK");
        }

        ring.prepCancel(ring.nextSqe(), 7, 0, 8);
        cqes = net.reap(ring, 2);
        assertEquals(0, only(cqes, 8).res(), "the cancel found the accept");
        Cqe last = only(cqes, 7);
        assertEquals(-ECANCELED, last.res());
        assertFalse(last.more(), "the cancelled multishot's last CQE has no F_MORE");

        net.connect(l);
        assertEquals(List.of(), net.poll(ring), "nothing accepts on the ring any more");
        int plain = net.track(sys.accept(l.fd(), MemorySegment.NULL, MemorySegment.NULL, 0));
        assertTrue(plain >= 0, "the connection waits in the backlog for a plain accept");
    }

    @Test
    void singleShotAcceptFillsThePeerAddress() {
        var l = net.listen(0);
        var addr = arena.allocate(64);
        var addrLen = arena.allocate(ValueLayout.JAVA_INT);
        addrLen.set(ValueLayout.JAVA_INT, 0, 64);
        ring.prepAccept(ring.nextSqe(), l.fd(), addr.address(), addrLen.address(), SOCK_CLOEXEC,
                false, 1);
        int client = net.connect(l);
        Cqe c = net.reap(ring, 1).getFirst();
        assertTrue(c.res() >= 0, c::toString);
        net.track(c.res());
        assertFalse(c.more(), "single shot");
        var local = arena.allocate(64);
        var localLen = arena.allocate(ValueLayout.JAVA_INT);
        localLen.set(ValueLayout.JAVA_INT, 0, 64);
        assertEquals(0, sys.getsockname(client, local, localLen));
        assertEquals(localLen.get(ValueLayout.JAVA_INT, 0), addrLen.get(ValueLayout.JAVA_INT, 0));
        assertEquals(SockAddr.decode(local), SockAddr.decode(addr),
                "the accepted peer is the client");
    }

    @Test
    void connectCompletesWhenConnectedAndRefusedIsEconnrefused() {
        var l = net.listen(0);
        int fd = net.track(sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        ring.prepConnect(ring.nextSqe(), fd, l.addr().address(), l.addrLen(), 1);
        assertEquals(0, net.reap(ring, 1).getFirst().res(), "connected, no EINPROGRESS");
        net.track(sys.accept(l.fd(), MemorySegment.NULL, MemorySegment.NULL, 0));

        // A port nobody listens on: the listener's, once it is closed.
        sys.close(l.fd());
        net.untrack(l.fd());
        int refused = net.track(sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        ring.prepConnect(ring.nextSqe(), refused, l.addr().address(), l.addrLen(), 2);
        assertEquals(-Errno.ECONNREFUSED, net.reap(ring, 1).getFirst().res());
    }

    @Test
    void recvCompletesWithWhatThePeerSentAndZeroAtEndOfStream() {
        int[] p = net.tcpPair();
        var buf = arena.allocate(64);
        ring.prepRecv(ring.nextSqe(), p[1], buf.address(), 64, 0, 1);
        assertEquals(List.of(), net.reap(ring, 0), "nothing to read: the recv waits");
        net.sendAll(p[0], "ping".getBytes(StandardCharsets.US_ASCII));
        Cqe c = net.reap(ring, 1).getFirst();
        assertEquals(4, c.res(), c::toString);
        assertEquals("ping", string(buf, 4));

        assertEquals(0, sys.shutdown(p[0], SHUT_WR));
        ring.prepRecv(ring.nextSqe(), p[1], buf.address(), 64, 0, 2);
        assertEquals(0, net.reap(ring, 1).getFirst().res(), "end of stream");
    }

    @Test
    void sendAndSendmsgDeliverTheirBytesInOrder() {
        int[] p = net.tcpPair();
        ring.prepSend(ring.nextSqe(), p[0], bytes("abc").address(), 3, MSG_NOSIGNAL, 1);
        assertEquals(3, net.reap(ring, 1).getFirst().res());

        var iov = arena.allocate(iovec.layout(), 2);
        var d = bytes("de");
        var f = bytes("fgh");
        iovec.iov_base(iovec.asSlice(iov, 0), d);
        iovec.iov_len(iovec.asSlice(iov, 0), 2);
        iovec.iov_base(iovec.asSlice(iov, 1), f);
        iovec.iov_len(iovec.asSlice(iov, 1), 3);
        var msg = arena.allocate(msghdr.layout());
        msghdr.msg_iov(msg, iov);
        msghdr.msg_iovlen(msg, 2);
        ring.prepSendmsg(ring.nextSqe(), p[0], msg.address(), MSG_NOSIGNAL, 2);
        assertEquals(5, net.reap(ring, 1).getFirst().res(), "both iovecs");
        assertEquals("abcdefgh", recvNow(p[1], 64));
    }

    /**
     * A send to a peer that closed is {@code -EPIPE} in the CQE and raises no {@code SIGPIPE}:
     * with {@code SIGPIPE} blocked on this thread (the one that enters, where an inline send
     * runs), a signal raised would stay pending. The control half proves the check can see
     * one: a plain {@code send(2)} without {@code MSG_NOSIGNAL} leaves {@code SIGPIPE} pending.
     */
    @Test
    void sendAndSendmsgToAClosedPeerAreEpipeWithoutSigpipe() {
        try (var blocked = Signals.blockSigpipe()) {
            int[] control = net.tcpPair();
            assertEquals(0, sys.shutdown(control[0], SHUT_WR));
            assertEquals(-Errno.EPIPE, sys.send(control[0], bytes("x"), 1, 0));
            assertTrue(blocked.pending(), "control: send(2) without MSG_NOSIGNAL raises SIGPIPE");
            while (blocked.pending()) {
                blocked.discard();
            }

            int[] p = net.tcpPair();
            sys.close(p[1]);
            net.untrack(p[1]);
            var data = bytes("after the peer closed");
            // The first send after the peer's FIN is accepted; the peer's RST answers it, and
            // from then on the connection is broken (tcp_reset in CLOSE_WAIT: EPIPE).
            int res = 0;
            for (int i = 0; i < 100 && res >= 0; i++) {
                ring.prepSend(ring.nextSqe(), p[0], data.address(), (int) data.byteSize(), MSG_NOSIGNAL, 1);
                res = net.reap(ring, 1).getFirst().res();
            }
            assertEquals(-Errno.EPIPE, res, "send on the broken connection");

            var iov = arena.allocate(iovec.layout());
            iovec.iov_base(iov, data);
            iovec.iov_len(iov, data.byteSize());
            var msg = arena.allocate(msghdr.layout());
            msghdr.msg_iov(msg, iov);
            msghdr.msg_iovlen(msg, 1);
            ring.prepSendmsg(ring.nextSqe(), p[0], msg.address(), MSG_NOSIGNAL, 2);
            assertEquals(-Errno.EPIPE, net.reap(ring, 1).getFirst().res(), "sendmsg likewise");
            assertFalse(blocked.pending(), "no SIGPIPE from either");
        }
    }

    @Test
    void cancelByUserDataEndsAnInFlightRecvWithEcanceled() {
        int[] p = net.tcpPair();
        var buf = arena.allocate(64);
        ring.prepRecv(ring.nextSqe(), p[1], buf.address(), 64, 0, 11);
        ring.prepRecv(ring.nextSqe(), p[0], buf.address(), 64, 0, 12);
        assertEquals(List.of(), net.reap(ring, 0), "both recvs in flight");

        ring.prepCancel(ring.nextSqe(), 11, 0, 13);
        var cqes = net.reap(ring, 2);
        assertEquals(2, cqes.size(), cqes::toString);
        assertEquals(0, only(cqes, 13).res());
        assertEquals(-ECANCELED, only(cqes, 11).res());

        ring.prepCancel(ring.nextSqe(), 11, 0, 14);
        assertEquals(-Errno.ENOENT, net.reap(ring, 1).getFirst().res(), "nothing left to cancel");
        net.sendAll(p[1], "x".getBytes(StandardCharsets.US_ASCII));
        assertEquals(1, only(net.reap(ring, 1), 12).res(), "the other recv was left alone");
    }

    @Test
    void cancelByFdEndsOneOrEveryRequestOnThatFd() {
        int[] p = net.tcpPair();
        var buf = arena.allocate(64);
        for (long ud = 21; ud <= 23; ud++) {
            ring.prepRecv(ring.nextSqe(), p[1], buf.address(), 64, 0, ud);
        }
        ring.prepRecv(ring.nextSqe(), p[0], buf.address(), 64, 0, 24);
        assertEquals(List.of(), net.reap(ring, 0));

        ring.prepCancelFd(ring.nextSqe(), p[1], 0, 25);
        var cqes = net.reap(ring, 2);
        assertEquals(0, only(cqes, 25).res(), "one matched");
        assertEquals(1, cqes.stream().filter(c -> c.res() == -ECANCELED).count(), cqes::toString);

        ring.prepCancelFd(ring.nextSqe(), p[1], Ring.CANCEL_ALL, 26);
        cqes = net.reap(ring, 3);
        assertEquals(2, only(cqes, 26).res(), "CANCEL_ALL: the count cancelled");
        assertEquals(2, cqes.stream().filter(c -> c.res() == -ECANCELED).count(), cqes::toString);
        assertTrue(cqes.stream().noneMatch(c -> c.userData() == 24), "p[0]'s recv untouched");

        ring.prepCancelFd(ring.nextSqe(), p[0], Ring.CANCEL_ALL, 27);
        cqes = net.reap(ring, 2);
        assertEquals(1, only(cqes, 27).res());
        assertEquals(-ECANCELED, only(cqes, 24).res());
    }

    @Test
    void closeOpReleasesTheFileAndABadFdIsEbadf() {
        int[] pair = new int[2];
        assertEquals(0, test.socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
        net.track(pair[0]);
        net.track(pair[1]);
        ring.prepClose(ring.nextSqe(), pair[0], 1);
        assertEquals(0, net.reap(ring, 1).getFirst().res());
        net.untrack(pair[0]);
        assertEquals("", recvNow(pair[1], 8), "the peer sees end of stream: the last reference is gone");

        ring.prepClose(ring.nextSqe(), 1_000_000, 2);
        assertEquals(-Errno.EBADF, net.reap(ring, 1).getFirst().res());
    }

    @Test
    void shutdownOpSendsFinAndTheOtherDirectionStaysOpen() {
        int[] p = net.tcpPair();
        ring.prepShutdown(ring.nextSqe(), p[0], SHUT_WR, 1);
        assertEquals(0, net.reap(ring, 1).getFirst().res());
        var buf = arena.allocate(8);
        assertEquals(0, sys.read(p[1], buf, 8), "the peer reads end of stream");
        net.sendAll(p[1], "back".getBytes(StandardCharsets.US_ASCII));
        assertEquals("back", recvNow(p[0], 8), "the read side still works");

        int efd = net.track(sys.eventfd(0, 0));
        ring.prepShutdown(ring.nextSqe(), efd, SHUT_WR, 2);
        assertEquals(-Errno.ENOTSOCK, net.reap(ring, 1).getFirst().res(), "shutdown of a non-socket");
    }

    @Test
    void msgRingPostsACqeWithTheGivenUserDataOnAnotherRing() throws SyscallException {
        other = UringSupport.open(new UringCalls(arena), arena, 8, UringSupport.SETUP_FLAGS);
        long target = 0x1234_5678_9ABC_DEF0L;
        ring.prepMsgRing(ring.nextSqe(), other.fd(), 4242, target, 1);
        Cqe sent = net.reap(ring, 1).getFirst();
        assertEquals(new Cqe(1, 0, 0), sent, "the sender's CQE");
        Cqe got = net.reap(other, 1).getFirst();
        assertEquals(new Cqe(target, 4242, 0), got, "the target's CQE: user_data and res as sent");
        assertEquals(List.of(), net.poll(ring), "nothing posted back on the sender");

        int efd = net.track(sys.eventfd(0, 0));
        ring.prepMsgRing(ring.nextSqe(), efd, 1, 1, 2);
        int res = net.reap(ring, 1).getFirst().res();
        assertTrue(res < 0, "msg_ring to a non-ring fd fails");
        assertEquals("EBADFD", Errno.name(-res));
    }

    @Test
    void pollAddReportsReadinessOnceOrUntilCancelled() {
        int[] p = net.tcpPair();
        ring.prepPollAdd(ring.nextSqe(), p[1], EPOLLIN, false, 1);
        assertEquals(List.of(), net.reap(ring, 0));
        net.sendAll(p[0], "a".getBytes(StandardCharsets.US_ASCII));
        Cqe once = net.reap(ring, 1).getFirst();
        assertEquals(EPOLLIN, once.res() & EPOLLIN, once::toString);
        assertFalse(once.more(), "single shot");
        assertEquals("a", recvNow(p[1], 8));

        ring.prepPollAdd(ring.nextSqe(), p[1], EPOLLIN, true, 2);
        assertEquals(List.of(), net.reap(ring, 0));
        for (int i = 0; i < 3; i++) {
            net.sendAll(p[0], "b".getBytes(StandardCharsets.US_ASCII));
            Cqe c = net.reap(ring, 1).getFirst();
            assertEquals(2, c.userData());
            assertEquals(EPOLLIN, c.res() & EPOLLIN, c::toString);
            assertTrue(c.more(), () -> "multishot stays armed: " + c);
            assertEquals("b", recvNow(p[1], 8));
        }
        ring.prepCancel(ring.nextSqe(), 2, 0, 3);
        var cqes = net.reap(ring, 2);
        assertEquals(0, only(cqes, 3).res());
        assertEquals(-ECANCELED, only(cqes, 2).res());
        assertFalse(only(cqes, 2).more());
    }
}
