package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.reactor.UringTesting;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.TransportRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Edges of the io_uring transport found by review: what happens to provided buffers, the close
 * promise and the queue at the ends of a connection's life. Each test names what broke.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class UringEdgesTest {
    private ReactorGroup group;

    private ReactorGroup start(TransportRing.Options options) throws Exception {
        var before = UringTesting.transportOptions(options);
        try {
            group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("uring-e-")
                    .withIo(ReactorGroup.Io.URING));
        } finally {
            UringTesting.transportOptions(before);
        }
        assertEquals(ReactorGroup.Io.URING, group.reactor(0).io(), "this kernel (6.15+) runs the io_uring transport");
        return group;
    }

    @AfterEach
    void stop() throws Exception {
        if (group != null) {
            group.close(Duration.ofSeconds(20));
        }
    }

    /** Echoes; closes on the peer's FIN. */
    static final class Echo implements ConnectionHandler {
        final LinkedBlockingQueue<Connection> opened = new LinkedBlockingQueue<>();

        @Override
        public void onOpen(Connection c) {
            opened.add(c);
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
        }

        @Override
        public void onPeerClosed(Connection c) {
            c.close();
        }
    }

    /**
     * The receive that reads the end of stream picked a provided buffer before it found the FIN:
     * its CQE (res 0) carries {@code F_BUFFER}, and that buffer must go back to the ring like any
     * other. Four buffers, twelve connections that each echo a few bytes and end with a FIN, one
     * after the other: the ring never runs dry, and a thirteenth connection is still served.
     */
    @Test
    void theEndOfStreamCqesBufferGoesBackToTheRing() throws Exception {
        twelveConnectionsEndingOnFourBuffers(s -> {
            s.shutdownOutput(); // FIN: the server's receive reads 0 and closes
            assertEquals(-1, s.getInputStream().read(), "the server closed after the FIN");
        });
    }

    /**
     * As above for a receive that ends with an error: twelve peers that reset their connection
     * (SO_LINGER 0) after an echo, one after the other, on four buffers.
     */
    @Test
    void theResetCqesBufferGoesBackToTheRing() throws Exception {
        twelveConnectionsEndingOnFourBuffers(s -> s.setSoLinger(true, 0)); // the close sends RST: the receive fails
    }

    /** How a peer ends its connection after its echo (the socket is closed right after). */
    private interface PeerEnd {
        void end(Socket s) throws Exception;
    }

    /**
     * Four provided buffers; twelve connections one after the other, each echoing a few bytes
     * and then ended by the peer as {@code end} says: the ring never runs dry, and a thirteenth
     * connection is still served.
     */
    private void twelveConnectionsEndingOnFourBuffers(PeerEnd end) throws Exception {
        Reactor r = start(TransportRing.Options.defaults().withBuffers(4, 4096)).reactor(0);
        var echo = new Echo();
        try (Server server = Server.bind(group, loopback(0), () -> echo)) {
            for (int i = 0; i < 12; i++) {
                try (Socket s = connect(server)) {
                    s.setSoTimeout(10_000);
                    echoOnce(s, "hello " + i);
                    end.end(s);
                }
                Connection c = echo.opened.poll(10, TimeUnit.SECONDS);
                assertNotNull(c);
                await(c.closeFuture());
            }
            assertEquals(0, r.stats().get(Counter.URING_BUFFERS_EXHAUSTED),
                    "four buffers for one connection at a time never run dry: " + r.stats());
            try (Socket s = connect(server)) {
                s.setSoTimeout(10_000);
                echoOnce(s, "still served");
            }
        }
    }

    /**
     * A graceful close waits for the queue to drain, but not for ever: on epoll the drain timer is
     * armed by the flush that finds the socket full. On io_uring the flush that a close runs finds
     * a send in flight and returns, and that send never completes while the peer reads nothing, so
     * the close must arm the timer there too. Here the peer never reads; the close still completes,
     * with a {@link SocketTimeoutException} naming the close.
     */
    @Test
    void aGracefulCloseBehindAStalledSendInFlightStillCompletes() throws Exception {
        Reactor r = start(TransportRing.Options.defaults()).reactor(0);
        Duration drainBefore = OutboundQueue.defaultDrainTimeout;
        OutboundQueue.defaultDrainTimeout = Duration.ofMillis(300);
        var opened = new LinkedBlockingQueue<TcpConnection>();
        var closedWith = new CompletableFuture<Throwable>();
        try (Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override
                 public void onOpen(Connection c) {
                     opened.add((TcpConnection) c);
                 }

                 @Override
                 public void onRead(Connection c, MemorySegment data) {}

                 @Override
                 public void onClose(Connection c, Throwable cause) {
                     closedWith.complete(cause);
                 }
             });
             Socket peer = connect(server)) { // never reads
            TcpConnection c = opened.poll(10, TimeUnit.SECONDS);
            assertNotNull(c);
            UringTransportTest.fillUntilASendIsStuck(r, c);
            assertTrue(UringTransportTest.on(r, () -> c.uring.sendInFlight()), "a send is in flight on a full socket");
            c.close();
            try {
                c.closeFuture().get(10, TimeUnit.SECONDS);
            } catch (TimeoutException e) {
                fail("the close never completed: a send in flight on a peer that reads nothing held it ("
                        + UringTransportTest.on(r, () -> c.uring.opsInFlight()) + " ops in flight, " + c.queuedBytes() + " bytes queued)");
            }
            Throwable why = closedWith.get(10, TimeUnit.SECONDS);
            assertInstanceOf(SocketTimeoutException.class, why, "the drain timeout closed it: " + why);
            assertTrue(why.getMessage().contains("close"), why.getMessage());
        } finally {
            OutboundQueue.defaultDrainTimeout = drainBefore;
        }
    }

    /**
     * Pause, resume and close from other threads, released together, against connections that
     * are receiving: every close completes (no op left holding its handle), and every connection
     * saw its bytes as a prefix of what was sent, in order (the stash of a pause neither loses nor
     * reorders). Repeated over many connections; fds checked by the extension.
     */
    @Test
    void pauseResumeAndCloseFromOtherThreadsRacingReceivesCompleteEveryCloseInOrder() throws Exception {
        start(TransportRing.Options.defaults().withBuffers(8, 512));
        int connections = 24;
        var opened = new LinkedBlockingQueue<Connection>();
        var received = new java.util.concurrent.ConcurrentHashMap<Connection, java.io.ByteArrayOutputStream>();
        try (Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override
                 public void onOpen(Connection c) {
                     received.put(c, new java.io.ByteArrayOutputStream());
                     opened.add(c);
                 }

                 @Override
                 public void onRead(Connection c, MemorySegment data) {
                     received.get(c).writeBytes(data.toArray(java.lang.foreign.ValueLayout.JAVA_BYTE));
                 }
             })) {
            byte[] data = new byte[64 * 1024];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i * 7 + i / 251);
            }
            var failures = new java.util.concurrent.ConcurrentLinkedQueue<Throwable>();
            var peers = new java.util.ArrayList<Socket>();
            var writers = new java.util.ArrayList<Thread>();
            var go = new java.util.concurrent.CountDownLatch(1);
            var conns = new java.util.ArrayList<Connection>();
            for (int i = 0; i < connections; i++) {
                Socket s = connect(server);
                peers.add(s);
                Connection c = opened.poll(10, TimeUnit.SECONDS);
                assertNotNull(c);
                conns.add(c);
                writers.add(Thread.ofPlatform().start(() -> {
                    try {
                        go.await();
                        s.getOutputStream().write(data);
                    } catch (java.io.IOException expected) {
                        // the server closed under the writer
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }));
            }
            var togglers = new java.util.ArrayList<Thread>();
            for (int i = 0; i < connections; i++) {
                Connection c = conns.get(i);
                int seed = i;
                togglers.add(Thread.ofPlatform().start(() -> {
                    var rnd = new java.util.Random(seed);
                    try {
                        go.await();
                        int toggles = rnd.nextInt(40);
                        for (int k = 0; k < toggles; k++) {
                            c.pauseReading();
                            if (rnd.nextBoolean()) {
                                Thread.onSpinWait();
                            }
                            c.resumeReading();
                        }
                        if (rnd.nextBoolean()) {
                            c.pauseReading(); // closed while paused, with whatever is stashed
                        }
                        if (rnd.nextBoolean()) {
                            c.abort();
                        } else {
                            c.close();
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }));
            }
            go.countDown();
            for (Thread t : togglers) {
                t.join(30_000);
            }
            for (Connection c : conns) {
                try {
                    c.closeFuture().get(20, TimeUnit.SECONDS);
                } catch (TimeoutException e) {
                    fail("a close never completed: " + c + " on " + group.reactor(0).stats());
                }
            }
            for (Socket s : peers) {
                s.close();
            }
            for (Thread t : writers) {
                t.join(30_000);
            }
            assertTrue(failures.isEmpty(), () -> "failures: " + failures);
            for (Connection c : conns) {
                byte[] got = received.get(c).toByteArray();
                assertTrue(got.length <= data.length);
                assertArrayEquals(java.util.Arrays.copyOf(data, got.length), got, "a prefix of what was sent, in order");
            }
        }
    }

    private static void echoOnce(Socket s, String text) throws Exception {
        byte[] b = text.getBytes();
        OutputStream out = s.getOutputStream();
        out.write(b);
        out.flush();
        InputStream in = s.getInputStream();
        assertEquals(text, new String(readExactly(in, b.length)));
    }
}
