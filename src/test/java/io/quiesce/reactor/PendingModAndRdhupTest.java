package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.net.WarmJdkSockets;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Two seed scenarios at the reactor level: a pending interest change dropped when its handle
 * closes in the same iteration ({@code batching-epoll-ctl.txt}), and the {@code EPOLLRDHUP} bit
 * itself reaching a raw handler when the peer shuts down its writing side.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class}) // the JDK's own socket fd is not ours
class PendingModAndRdhupTest {
    private ReactorGroup group;
    private Reactor reactor;
    private final Syscalls sys = Syscalls.current();

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("batch-"));
        reactor = group.reactor(0);
    }

    @AfterEach
    void stop() throws Exception {
        group.close(Duration.ofSeconds(20));
    }

    /**
     * Seed 13: interest changed, then the handle closed, in one iteration. The DEL happens at the
     * close; applying the change afterwards would be an ADD (the kernel no longer has the fd) of a
     * number about to be released, i.e. a registration of whatever file takes that number next.
     * So the change is dropped: no MOD, no second ADD, the kernel lists nothing for the fd.
     */
    @Test
    void aPendingModIsDroppedWhenItsHandleClosesInTheSameIteration() throws Exception {
        Handle h = reactor.register(eventfd(), Interest.READ, (x, r) -> {});
        roundTrips(reactor, 1); // ADDed
        var stats = reactor.stats();
        long adds = stats.get(Counter.CTL_ADD);
        long mods = stats.get(Counter.CTL_MOD);
        long dels = stats.get(Counter.CTL_DEL);
        long dropped = stats.get(Counter.CTL_DROPPED_CLOSING);
        int fd = h.fd();
        onReactor(reactor, () -> {
            h.interest(Interest.READ | Interest.WRITE); // pending in the batch
            h.close();                                  // DEL now; the fd is released after the batch
        });
        h.closeFuture().get(20, TimeUnit.SECONDS);
        assertEquals(dropped + 1, stats.get(Counter.CTL_DROPPED_CLOSING), "the pending change was dropped: " + stats);
        assertEquals(mods, stats.get(Counter.CTL_MOD), "no MOD for a closing handle: " + stats);
        assertEquals(adds, stats.get(Counter.CTL_ADD), "no ADD after the DEL: " + stats);
        assertEquals(dels + 1, stats.get(Counter.CTL_DEL), "one DEL (a caller's fd): " + stats);
        assertFalse(EpollInfo.registeredFds(reactor.epollFd()).contains(fd), "kernel still lists fd " + fd);
    }

    /**
     * The other order: a foreign thread's interest change is queued, then the handle is closed
     * before the reactor runs it. The change finds the handle closing and is dropped.
     */
    @Test
    void anInterestChangeQueuedBeforeAForeignCloseIsDropped() throws Exception {
        Handle h = reactor.register(eventfd(), Interest.READ, (x, r) -> {});
        roundTrips(reactor, 1);
        var stats = reactor.stats();
        long mods = stats.get(Counter.CTL_MOD);
        long adds = stats.get(Counter.CTL_ADD);
        long dropped = stats.get(Counter.CTL_DROPPED_CLOSING);
        var gate = new CountDownLatch(1);
        var blocked = new CountDownLatch(1);
        reactor.execute(() -> { // holds the reactor so that both requests wait in its queue
            blocked.countDown();
            try {
                gate.await(20, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        await(blocked);
        h.interest(Interest.WRITE);
        h.close();
        gate.countDown();
        h.closeFuture().get(20, TimeUnit.SECONDS);
        assertEquals(dropped + 1, stats.get(Counter.CTL_DROPPED_CLOSING), stats::toString);
        assertEquals(mods, stats.get(Counter.CTL_MOD), stats::toString);
        assertEquals(adds, stats.get(Counter.CTL_ADD), stats::toString);
    }

    /**
     * Seed 4 on a socketpair: the peer's {@code shutdown(SHUT_WR)} reaches the handler as
     * {@link Interest#PEER_CLOSED} (EPOLLRDHUP) with READ (end of stream), without HANGUP (only
     * one direction ended), and this end can still write.
     */
    @Test
    void aPeersShutWrReachesARawHandlerAsRdhupOnASocketpair() throws Exception {
        int[] fds = new int[2];
        assertEquals(0, TestSyscalls.current().socketpair(TestSyscalls.AF_UNIX, Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0, fds));
        var readies = new LinkedBlockingQueue<Integer>();
        Handle h = reactor.register(fds[0], Interest.READ | Interest.PEER_CLOSED, (x, r) -> readies.add(r));
        roundTrips(reactor, 1);
        assertEquals(0, sys.shutdown(fds[1], Syscalls.SHUT_WR));
        int ready = awaitPeerClosed(readies);
        assertEquals(0, ready & Interest.HANGUP, "half-close is not a hang-up: " + Interest.toString(ready));
        assertEquals(Interest.READ, ready & Interest.READ, "end of stream is readable: " + Interest.toString(ready));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment buf = a.allocate(16);
            assertEquals(0, TestSyscalls.current().recv(fds[0], buf, 16, 0), "EOF");
            buf.setString(0, "still");
            assertEquals(5, sys.send(fds[0], buf, 5, Syscalls.MSG_NOSIGNAL), "this end still writes");
            assertEquals(5, TestSyscalls.current().recv(fds[1], buf, 16, 0), "the peer still reads");
        }
        h.close(Duration.ofSeconds(10));
        assertEquals(0, sys.close(fds[1]));
    }

    /** Seed 4 over TCP loopback: the peer's FIN ({@code shutdownOutput}) arrives as EPOLLRDHUP. */
    @Test
    void aPeersShutWrReachesARawHandlerAsRdhupOverTcp() throws Exception {
        try (ServerSocket listener = new ServerSocket(0, 1, InetAddress.getLoopbackAddress());
             Arena a = Arena.ofConfined()) {
            int fd = sys.socket(Syscalls.AF_INET, Syscalls.SOCK_STREAM, 0);
            assertTrue(fd >= 0, "socket");
            MemorySegment addr = a.allocate(SockAddr.MAX_SIZE);
            int len = SockAddr.encode(new InetSocketAddress(InetAddress.getLoopbackAddress(), listener.getLocalPort()), addr);
            assertEquals(0, sys.connect(fd, addr, len), "blocking connect to loopback");
            int flags = TestSyscalls.current().fcntl(fd, TestSyscalls.F_GETFL, 0);
            assertEquals(0, TestSyscalls.current().fcntl(fd, TestSyscalls.F_SETFL, flags | TestSyscalls.O_NONBLOCK));
            try (Socket peer = listener.accept()) {
                peer.setSoTimeout(20_000);
                var readies = new LinkedBlockingQueue<Integer>();
                Handle h = reactor.register(fd, Interest.READ | Interest.PEER_CLOSED, (x, r) -> readies.add(r));
                roundTrips(reactor, 1);
                peer.shutdownOutput();
                int ready = awaitPeerClosed(readies);
                assertEquals(0, ready & Interest.HANGUP, "half-close is not a hang-up: " + Interest.toString(ready));
                MemorySegment buf = a.allocate(16);
                assertEquals(0, TestSyscalls.current().recv(fd, buf, 16, 0), "EOF");
                buf.setString(0, "half");
                assertEquals(4, sys.send(fd, buf, 4, Syscalls.MSG_NOSIGNAL), "this end still writes");
                assertArrayEquals("half".getBytes(), peer.getInputStream().readNBytes(4));
                h.close(Duration.ofSeconds(10));
            }
        }
    }

    /** Waits for a ready set with PEER_CLOSED in it (edge-triggered: the first carries it). */
    private static int awaitPeerClosed(LinkedBlockingQueue<Integer> readies) throws InterruptedException {
        while (true) {
            Integer r = readies.poll(20, TimeUnit.SECONDS);
            assertNotNull(r, "no event after the peer's shutdown");
            if ((r & Interest.PEER_CLOSED) != 0) {
                return r;
            }
        }
    }
}
