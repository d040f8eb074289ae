package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallFailure;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.ConnectException;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Supplier;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class ConnectionTest {
    private ReactorGroup group;
    private final List<Server> servers = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("conn-test-"));
    }

    @AfterEach
    void stop() throws Exception {
        for (Server s : servers) {
            s.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
        }
        group.close(Duration.ofSeconds(WAIT_SECONDS));
    }

    private Server serve(Supplier<ConnectionHandler> handlers) throws Exception {
        return serve(ServerOptions.defaults(), handlers);
    }

    private Server serve(ServerOptions options, Supplier<ConnectionHandler> handlers) throws Exception {
        Server s = Server.bind(group, loopback(0), options, handlers);
        servers.add(s);
        return s;
    }

    private static String text(MemorySegment data) {
        return new String(data.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
    }

    /** Records what the server side saw. */
    static class Recorder implements ConnectionHandler {
        final StringBuffer read = new StringBuffer();
        final CountDownLatch peerClosed = new CountDownLatch(1);
        final CountDownLatch closed = new CountDownLatch(1);
        final AtomicReference<Throwable> cause = new AtomicReference<>();
        volatile Connection connection;

        @Override
        public void onOpen(Connection c) {
            connection = c;
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            read.append(text(data));
        }

        @Override
        public void onPeerClosed(Connection c) {
            peerClosed.countDown();
        }

        @Override
        public void onClose(Connection c, Throwable why) {
            cause.set(why);
            closed.countDown();
        }
    }

    @Test
    void peerHalfCloseLeavesWritingOpen() throws Exception {
        var rec = new Recorder() {
            @Override
            public void onPeerClosed(Connection c) {
                super.onPeerClosed(c);
                c.write(("got " + read + ", bye").getBytes()); // reading EOF does not close writing
                c.close();
            }
        };
        Server server = serve(() -> rec);
        try (Socket s = connect(server)) {
            s.getOutputStream().write("ping".getBytes());
            s.shutdownOutput(); // FIN: the server sees RDHUP and end of stream
            assertEquals("got ping, bye", new String(s.getInputStream().readAllBytes()));
        }
        await(rec.closed);
        assertNull(rec.cause.get());
    }

    @Test
    void shutdownOutputSendsFinAndReadingGoesOn() throws Exception {
        var rec = new Recorder() {
            @Override
            public void onOpen(Connection c) {
                super.onOpen(c);
                c.write("hello".getBytes());
                c.shutdownOutput();
                assertFalse(c.write("late".getBytes()), "writes after shutdownOutput are refused");
            }
        };
        Server server = serve(() -> rec);
        try (Socket s = connect(server)) {
            InputStream in = s.getInputStream();
            assertEquals("hello", new String(readExactly(in, 5)));
            assertEquals(-1, in.read(), "FIN after the queued bytes");
            s.getOutputStream().write("still reading?".getBytes());
            eventually("server read after its shutdownOutput", () -> rec.read.toString().equals("still reading?"));
            assertTrue(rec.connection.isOpen());
            s.shutdownOutput();
            await(rec.closed); // both directions ended: closed by itself
        }
        assertNull(rec.cause.get());
        assertEquals(1, rec.peerClosed.getCount() == 0 ? 1 : 0, "onPeerClosed ran before the close");
    }

    @Test
    void peerResetClosesWithEconnreset() throws Exception {
        var rec = new Recorder();
        Server server = serve(() -> rec);
        Socket s = connect(server);
        s.getOutputStream().write("x".getBytes());
        eventually("read", () -> rec.read.length() == 1);
        s.setSoLinger(true, 0);
        s.close(); // RST
        await(rec.closed);
        // A java.net.SocketException, carrying the call and errno; stackless (a peer's doing).
        var se = assertInstanceOf(SocketException.class, rec.cause.get());
        var e = assertInstanceOf(SyscallFailure.class, se);
        assertEquals(Errno.ECONNRESET, e.errno(), se.getMessage());
        assertEquals("ECONNRESET", e.errnoName());
        assertTrue(se.getMessage().contains("ECONNRESET"), se.getMessage());
        assertEquals(0, se.getStackTrace().length, "a peer-caused failure is stackless");
    }

    @Test
    void writingAfterThePeerClosedGivesEpipeNotSigpipe() throws Exception {
        var rec = new Recorder() {
            @Override
            public void onPeerClosed(Connection c) {
                super.onPeerClosed(c);
                writeUntilItFails(c);
            }

            void writeUntilItFails(Connection c) {
                if (c.write(new byte[1024])) {
                    c.reactor().schedule(5, TimeUnit.MILLISECONDS, () -> writeUntilItFails(c));
                }
            }
        };
        Server server = serve(() -> rec);
        try (Socket s = connect(server)) {
            s.getOutputStream().write("x".getBytes());
            eventually("read", () -> rec.read.length() == 1);
        } // FIN; the first write after it draws an RST, the next one EPIPE
        await(rec.closed);
        var se = assertInstanceOf(SocketException.class, rec.cause.get());
        var e = assertInstanceOf(SyscallFailure.class, se);
        assertEquals(Errno.EPIPE, e.errno(), se.getMessage());
        assertEquals(0, se.getStackTrace().length, "a peer-caused failure is stackless");
        // still serving (and still alive: a SIGPIPE would have killed a process without a handler)
        var echo = serve(EchoTest.Echo::new);
        try (Socket s = connect(echo)) {
            s.getOutputStream().write(7);
            assertEquals(7, s.getInputStream().read());
        }
    }

    @Test
    void aHandlerThatThrowsClosesOnlyItsOwnConnection() throws Exception {
        var closes = new AtomicInteger();
        var boom = new IllegalStateException("boom");
        var causes = new AtomicReference<Throwable>();
        Server server = serve(() -> new EchoTest.Echo() {
            @Override
            public void onRead(Connection c, MemorySegment data) {
                if (text(data).contains("boom")) {
                    throw boom;
                }
                super.onRead(c, data);
            }

            @Override
            public void onClose(Connection c, Throwable cause) {
                causes.compareAndSet(null, cause);
                closes.incrementAndGet();
            }
        });
        try (Socket good = connect(server); Socket bad = connect(server)) {
            good.getOutputStream().write("a".getBytes());
            assertEquals('a', good.getInputStream().read());
            bad.getOutputStream().write("boom".getBytes());
            assertEquals(-1, bad.getInputStream().read(), "the throwing handler's connection is closed");
            good.getOutputStream().write("b".getBytes());
            assertEquals('b', good.getInputStream().read(), "the other connection is untouched");
            try (Socket later = connect(server)) {
                later.getOutputStream().write("c".getBytes());
                assertEquals('c', later.getInputStream().read(), "the server keeps accepting");
            }
        }
        // Two reactors: another connection's clean onClose (cause null) may come first, so wait
        // for the throwing one's own, not for any.
        eventually("the throwing connection's onClose", () -> causes.get() != null);
        assertSame(boom, causes.get());
        assertTrue(closes.get() >= 1);
    }

    @Test
    void clientConnectEchoesAndReportsRefusal() throws Exception {
        Server server = serve(EchoTest.Echo::new);
        var got = new CompletableFuture<String>();
        Connection c = await(Client.connect(group.reactor(1), loopback(server.port()), new ConnectionHandler() {
            final StringBuilder sb = new StringBuilder();

            @Override
            public void onOpen(Connection c) {
                c.write("round trip".getBytes());
            }

            @Override
            public void onRead(Connection c, MemorySegment data) {
                sb.append(text(data));
                if (sb.length() == 10) {
                    got.complete(sb.toString());
                }
            }
        }));
        assertEquals("round trip", await(got));
        assertEquals(server.port(), c.remoteAddress().getPort());
        c.close();
        await(c.closeFuture());

        int closedPort;
        try (ServerSocket ss = new ServerSocket(0)) {
            closedPort = ss.getLocalPort();
        }
        var refused = Client.connect(group.reactor(0), loopback(closedPort), (conn, data) -> {});
        var e = assertThrows(ExecutionException.class, () -> refused.get(WAIT_SECONDS, TimeUnit.SECONDS));
        var ce = assertInstanceOf(ConnectException.class, e.getCause());
        var se = assertInstanceOf(SyscallFailure.class, ce);
        assertEquals(Errno.ECONNREFUSED, se.errno(), ce.getMessage());
        assertEquals("connect", se.call());
        assertTrue(se.fd() >= 0, "the socket's fd: " + se.fd());
        assertTrue(ce.getMessage().startsWith("connect(fd="), ce.getMessage());
        assertTrue(ce.getMessage().contains("ECONNREFUSED"), ce.getMessage());
    }

    @Test
    void clientConnectTimesOut() throws Exception {
        // A listener that never accepts, its backlog filled: further SYNs are dropped.
        try (ServerSocket ss = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            List<SocketChannel> fillers = new ArrayList<>();
            try {
                for (int i = 0; i < 8; i++) {
                    SocketChannel ch = SocketChannel.open();
                    ch.configureBlocking(false);
                    ch.connect(ss.getLocalSocketAddress());
                    fillers.add(ch);
                }
                var f = Client.connect(group.reactor(0), loopback(ss.getLocalPort()), ConnectionOptions.defaults(),
                        Duration.ofMillis(300), (conn, data) -> {});
                var e = assertThrows(ExecutionException.class, () -> f.get(WAIT_SECONDS, TimeUnit.SECONDS));
                var te = assertInstanceOf(SocketTimeoutException.class, e.getCause());
                var tf = assertInstanceOf(SyscallFailure.class, te);
                assertEquals("connect", tf.call(), te.getMessage());
                assertEquals(Errno.ETIMEDOUT, tf.errno());
                assertTrue(tf.fd() >= 0, te.getMessage());
            } finally {
                for (SocketChannel ch : fillers) {
                    ch.close();
                }
            }
        }
    }

    @Test
    void readIdleTimeoutClosesAQuietConnection() throws Exception {
        var rec = new Recorder();
        Server server = serve(ServerOptions.defaults().withConnection(ConnectionOptions.builder()
                .timeouts(Duration.ofMillis(200), Duration.ZERO).build()), () -> rec);
        try (Socket s = connect(server)) {
            assertEquals(-1, s.getInputStream().read(), "closed by the server");
        }
        await(rec.closed);
        var te = assertInstanceOf(SocketTimeoutException.class, rec.cause.get());
        assertEquals("read", assertInstanceOf(SyscallFailure.class, te).call(), te.getMessage());
    }

    @Test
    void writesFromAnotherThreadArriveInOrder() throws Exception {
        var rec = new Recorder();
        Server server = serve(() -> rec);
        final int n = 5_000;
        try (Socket s = connect(server)) {
            eventually("opened", () -> rec.connection != null);
            Connection c = rec.connection;
            Thread writer = Thread.ofPlatform().start(() -> {
                for (int i = 0; i < n; i++) {
                    assertTrue(c.write((i + "\n").getBytes()));
                }
            });
            var in = new java.io.BufferedReader(new java.io.InputStreamReader(s.getInputStream()));
            for (int i = 0; i < n; i++) {
                assertEquals(Integer.toString(i), in.readLine());
            }
            writer.join();
            eventually("queue drained", () -> c.queuedBytes() == 0);
            assertTrue(c.isWritable());
        }
    }

    @Test
    void aWriterThatIgnoresWritabilityIsCutOffAtTheHardLimit() throws Exception {
        var rec = new Recorder() {
            @Override
            public void onOpen(Connection c) {
                super.onOpen(c);
                byte[] block = new byte[64 * 1024];
                while (c.write(block)) {
                    // the client never reads: the kernel buffers fill, then the queue
                }
            }
        };
        Server server = serve(ServerOptions.defaults().withConnection(ConnectionOptions.builder()
                .maxQueuedBytes(4L << 20).build()), () -> rec);
        try (Socket s = connect(server)) {
            await(rec.closed);
        }
        assertTrue(rec.cause.get().getMessage().contains("write queue limit"), rec.cause.get().toString());
    }
}
