package io.quiesce.net;

import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The network layer's own per-reactor counters. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class NetStatsTest {
    @Test
    void countsAcceptsConnectionsAndBytesOnTheReactorThatServedThem() throws Exception {
        var opened = new LinkedBlockingQueue<Connection>();
        try (ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("netstats-"));
             Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override public void onOpen(Connection c) {
                     opened.add(c);
                 }
                 @Override public void onRead(Connection c, MemorySegment data) {
                     c.write(data); // echo
                 }
             })) {
            NetStats ns = NetStats.of(group.reactor(0));
            assertSame(ns, NetStats.of(group.reactor(0)), "one set per reactor");
            try (Socket s = connect(server)) {
                s.getOutputStream().write(new byte[] {1, 2, 3, 4, 5});
                assertArrayEquals(new byte[] {1, 2, 3, 4, 5}, readExactly(s.getInputStream(), 5));
                eventually("the accepted connection counted open", () -> ns.acceptedOpen() == 1);
                assertEquals(1, ns.get(NetStats.Counter.ACCEPTS));
                // counted after the syscall returns: the echo can arrive before the store
                eventually("5 bytes read and written", () -> ns.get(NetStats.Counter.BYTES_READ) == 5
                        && ns.get(NetStats.Counter.BYTES_WRITTEN) == 5);
                assertEquals(0, ns.outgoingOpen());
            }
            eventually("the closed connection counted", () -> ns.get(NetStats.Counter.ACCEPTED_CLOSED) == 1);
            assertEquals(0, ns.acceptedOpen());
            assertEquals(1, server.stats().accepted(), "the server's own count");
        }
    }

    /**
     * A reference held on a connection's handle outlives its reactor, whose loop failed (its epoll
     * fd replaced behind its back): the fd is released by the thread that drops the reference, and
     * no {@code onClose} runs there. The connection was counted open; its close must be counted
     * too, or the gauge says 1 forever.
     */
    @Test
    void aConnectionReleasedAfterItsReactorExitedIsCountedClosed() throws Throwable {
        var opened = new LinkedBlockingQueue<Connection>();
        ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("netstats-"));
        Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
            @Override public void onOpen(Connection c) {
                opened.add(c);
            }
            @Override public void onRead(Connection c, MemorySegment data) {}
        });
        Reactor r = group.reactor(0);
        NetStats ns = NetStats.of(r);
        try (Socket s = connect(server)) {
            Connection c = opened.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(c, "accepted");
            eventually("counted open", () -> ns.acceptedOpen() == 1);
            Handle h = ((TcpConnection) c).handle();
            assertTrue(h.tryRetain());

            Method epollFd = Reactor.class.getDeclaredMethod("epollFd");
            epollFd.setAccessible(true);
            int epfd = (int) epollFd.invoke(r);
            replaceWithEventfd(epfd);
            wakeUntilStopped(r); // the next wait fails
            r.terminationFuture().handle((v, t) -> null).get(WAIT_SECONDS, TimeUnit.SECONDS);
            assertFalse(h.closeFuture().isDone(), "the held reference delays the release");
            assertEquals(1, ns.acceptedOpen(), "not released yet: still open");

            h.release(); // this thread releases the fd; no onClose runs here
            h.closeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
            assertEquals(1, ns.get(NetStats.Counter.ACCEPTED_CLOSED), "the close finished off the reactor thread");
            assertEquals(0, ns.acceptedOpen(), "the open gauge does not drift");
        } finally {
            server.close();
            group.close(Duration.ofSeconds(WAIT_SECONDS));
        }
    }
}
