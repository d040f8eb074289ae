package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.reactor.UringTesting;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.ConnectException;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;
import java.util.function.UnaryOperator;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The io_uring transport's optional ops: half-close and connect as SQEs (with their fallbacks). */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class UringOpsTest {
    private ReactorGroup group;

    private Reactor start(UnaryOperator<TransportRing.Options> options) throws Exception {
        var before = UringTesting.transportOptions(options.apply(TransportRing.Options.defaults()));
        try {
            group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("uring-ops-")
                    .withIo(ReactorGroup.Io.URING));
        } finally {
            UringTesting.transportOptions(before);
        }
        assertEquals(ReactorGroup.Io.URING, group.reactor(0).io(), "this kernel (6.15+) runs the io_uring transport");
        return group.reactor(0);
    }

    @AfterEach
    void stop() throws Exception {
        if (group != null) {
            group.close(Duration.ofSeconds(20));
        }
    }

    private static <T> T on(Reactor r, Supplier<T> s) throws Exception {
        return CompletableFuture.supplyAsync(s, r).get(WAIT_SECONDS, TimeUnit.SECONDS);
    }

    /** Hands each accepted connection to the test and keeps what it reads. */
    static final class Keeper implements ConnectionHandler {
        final LinkedBlockingQueue<TcpConnection> opened = new LinkedBlockingQueue<>();
        final LinkedBlockingQueue<String> reads = new LinkedBlockingQueue<>();

        @Override
        public void onOpen(Connection c) {
            opened.add((TcpConnection) c);
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            reads.add(new String(data.toArray(ValueLayout.JAVA_BYTE)));
        }

        TcpConnection next() throws InterruptedException {
            TcpConnection c = opened.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(c, "a connection was accepted");
            return c;
        }
    }

    /**
     * Runs the server side's {@code shutdownOutput()} and the flush it asks for on the reactor
     * thread, in one task: {@return the ops in flight right after} (the SQEs go in at the next enter)
     */
    private static int shutdownAndFlush(Reactor r, TcpConnection c) throws Exception {
        return on(r, () -> {
            c.shutdownOutput();
            c.flushFromTask();
            return c.uring.opsInFlight();
        });
    }

    // ------------------------------------------------------------------ half-close

    /**
     * {@code shutdownOutput()} with nothing queued is a {@code SHUTDOWN} SQE, holding the handle
     * like the receive does (two ops in flight once it is prepared, where {@code shutdown(2)}
     * would leave one); the peer sees the FIN, and reading goes on afterwards.
     */
    @Test
    void halfCloseIsAShutdownSqeAndReadingGoesOn() throws Exception {
        Reactor r = start(o -> o);
        var keeper = new Keeper();
        try (Server server = Server.bind(group, loopback(0), () -> keeper);
             Socket peer = connect(server)) {
            TcpConnection c = keeper.next();
            assertEquals(2, shutdownAndFlush(r, c), "the multishot receive and the SHUTDOWN SQE");
            assertEquals(-1, peer.getInputStream().read(), "the peer sees the FIN");
            eventually("the SHUTDOWN's CQE drops its hold", () -> {
                try {
                    return on(r, () -> c.uring.opsInFlight()) == 1;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            peer.getOutputStream().write("after the FIN".getBytes());
            assertEquals("after the FIN", keeper.reads.poll(WAIT_SECONDS, TimeUnit.SECONDS), "reading goes on");
            assertTrue(c.isOpen());
        }
    }

    /**
     * The FIN follows the data: 8 MiB queued to a peer that does not read yet, then
     * {@code shutdownOutput()}. While a send is in flight no SHUTDOWN is (ops stay at two: receive
     * and send); the peer reads every byte, in order, then the end of stream.
     */
    @Test
    void theShutdownSqeWaitsForEveryQueuedByte() throws Exception {
        Reactor r = start(o -> o);
        var keeper = new Keeper();
        int size = 8 << 20;
        byte[] data = new byte[size];
        for (int i = 0; i < size; i++) {
            data[i] = (byte) (i * 7 + (i >>> 13));
        }
        try (Server server = Server.bind(group, loopback(0), () -> keeper);
             Socket peer = connect(server)) {
            TcpConnection c = keeper.next();
            int ops = on(r, () -> {
                c.write(data);
                c.flushFromTask(); // a send is in flight now
                c.shutdownOutput();
                c.flushFromTask();
                return c.uring.opsInFlight();
            });
            assertEquals(2, ops, "receive and send: no SHUTDOWN while a send is in flight");
            InputStream in = peer.getInputStream();
            assertArrayEquals(data, readExactly(in, size), "every byte, in order");
            assertEquals(-1, in.read(), "then the FIN");
        }
    }

    /** Where the kernel lacks {@code IORING_OP_SHUTDOWN}, half-close is {@code shutdown(2)}, as before. */
    @Test
    void withoutTheShutdownOpHalfCloseIsTheSyscall() throws Exception {
        Reactor r = start(o -> o.withProbeView(p -> p.without(Ring.OP_SHUTDOWN)));
        var keeper = new Keeper();
        try (Server server = Server.bind(group, loopback(0), () -> keeper);
             Socket peer = connect(server)) {
            TcpConnection c = keeper.next();
            assertEquals(1, shutdownAndFlush(r, c), "only the receive: the FIN went out with shutdown(2)");
            assertEquals(-1, peer.getInputStream().read(), "the peer sees the FIN");
            peer.getOutputStream().write("after".getBytes());
            assertEquals("after", keeper.reads.poll(WAIT_SECONDS, TimeUnit.SECONDS));
        }
    }

    // ------------------------------------------------------------------ connect

    private record Started(TcpConnection connection, boolean connectSqe, int ops) {}

    /** Starts a client connect on the reactor thread; {@return the connection and whether a CONNECT SQE is in flight} */
    private static Started startConnect(Reactor r, InetSocketAddress to, Duration timeout, ConnectionHandler handler,
                                        CompletableFuture<Connection> future) throws Exception {
        return on(r, () -> {
            TcpConnection c = Connector.start(NetContext.of(r), to, ConnectionOptions.defaults(), timeout, handler, future);
            return new Started(c, c != null && c.uring.connectInFlight(), c == null ? 0 : c.uring.opsInFlight());
        });
    }

    /** A client connect is one {@code CONNECT} SQE (no poll, no {@code getsockopt}); it opens and echoes. */
    @Test
    void aConnectIsAConnectSqeAndOpens() throws Exception {
        Reactor r = start(o -> o);
        try (Server server = Server.bind(group, loopback(0), () -> new UringTransportTest.Echo(new LinkedBlockingQueue<>()))) {
            var keeper = new Keeper();
            var future = new CompletableFuture<Connection>();
            Started s = startConnect(r, loopback(server.port()), Duration.ofSeconds(WAIT_SECONDS), keeper, future);
            assertTrue(s.connectSqe(), "the connect is an SQE");
            assertEquals(1, s.ops(), "one op: the CONNECT, holding the handle");
            Connection c = await(future);
            assertSame(s.connection(), c);
            assertTrue(c.write("ping".getBytes()));
            assertEquals("ping", keeper.reads.poll(WAIT_SECONDS, TimeUnit.SECONDS), "the echo came back");
            assertFalse(on(r, () -> s.connection().uring.connectInFlight()));
            c.close();
            await(c.closeFuture());
        }
    }

    /** A refused connect fails as on epoll: a {@link ConnectException} naming {@code connect} and ECONNREFUSED. */
    @Test
    void aRefusedConnectIsAConnectException() throws Exception {
        Reactor r = start(o -> o);
        int port;
        try (ServerSocket closed = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = closed.getLocalPort(); // closed again: nothing listens there
        }
        var future = new CompletableFuture<Connection>();
        Started s = startConnect(r, loopback(port), Duration.ofSeconds(WAIT_SECONDS), new Keeper(), future);
        assertTrue(s.connectSqe());
        var e = assertThrows(ExecutionException.class, () -> future.get(WAIT_SECONDS, TimeUnit.SECONDS));
        assertInstanceOf(ConnectException.class, e.getCause(), () -> "got " + e.getCause());
        assertTrue(e.getCause().getMessage().contains("connect") && e.getCause().getMessage().contains("ECONNREFUSED"),
                e.getCause().getMessage());
        await(s.connection().closeFuture());
    }

    /**
     * The connect timer cancels the {@code CONNECT} SQE ({@code ASYNC_CANCEL} by token) and the
     * close waits for its CQE: when the fd is released no op is in flight, and the future fails
     * with a {@link SocketTimeoutException}. The peer is a listener whose accept queue is full,
     * so the kernel drops the SYNs and the handshake never ends.
     */
    @Test
    void theConnectTimeoutCancelsTheConnectSqeAndTheCloseWaitsForItsCqe() throws Exception {
        Reactor r = start(o -> o);
        try (ServerSocket full = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            var fillers = new ArrayList<Socket>();
            try {
                fillAcceptQueue(full, fillers);
                long cancelsBefore = r.stats().get(ReactorStats.Counter.URING_CANCELS);
                var future = new CompletableFuture<Connection>();
                var opsAtRelease = new CompletableFuture<Integer>();
                Started s = startConnect(r, loopback(full.getLocalPort()), Duration.ofMillis(200), new Keeper(), future);
                assertTrue(s.connectSqe());
                on(r, () -> s.connection().handle().closeFuture()
                        .thenRun(() -> opsAtRelease.complete(s.connection().uring.opsInFlight())));
                var e = assertThrows(ExecutionException.class, () -> future.get(WAIT_SECONDS, TimeUnit.SECONDS));
                assertInstanceOf(SocketTimeoutException.class, e.getCause(), () -> "got " + e.getCause());
                assertEquals(0, await(opsAtRelease), "the CONNECT's CQE was reaped before close(fd)");
                assertEquals(cancelsBefore + 1, r.stats().get(ReactorStats.Counter.URING_CANCELS),
                        "the CONNECT was cancelled");
            } finally {
                for (Socket f : fillers) {
                    f.close();
                }
            }
        }
    }

    /** Connects until one does not complete: the accept queue of {@code full} is then full (bounded). */
    private static void fillAcceptQueue(ServerSocket full, List<Socket> fillers) throws Exception {
        for (int i = 0; i < 16; i++) {
            Socket f = new Socket();
            fillers.add(f);
            try {
                f.connect(full.getLocalSocketAddress(), 300);
            } catch (SocketTimeoutException e) {
                return; // this SYN was dropped: so will the next ones be
            }
        }
        fail("the accept queue of a backlog-1 listener never filled");
    }

    /** Where the kernel lacks {@code IORING_OP_CONNECT}, a connect is {@code connect(2)} and a poll, as before. */
    @Test
    void withoutTheConnectOpAConnectIsTheSyscallAndAPoll() throws Exception {
        Reactor r = start(o -> o.withProbeView(p -> p.without(Ring.OP_CONNECT)));
        try (Server server = Server.bind(group, loopback(0), () -> new UringTransportTest.Echo(new LinkedBlockingQueue<>()))) {
            var keeper = new Keeper();
            var future = new CompletableFuture<Connection>();
            Started s = startConnect(r, loopback(server.port()), Duration.ofSeconds(WAIT_SECONDS), keeper, future);
            assertFalse(s.connectSqe(), "no CONNECT SQE");
            Connection c = await(future);
            assertTrue(c.write("ping".getBytes()));
            assertEquals("ping", keeper.reads.poll(WAIT_SECONDS, TimeUnit.SECONDS));
            c.close();
            await(c.closeFuture());
        }
    }

    // ------------------------------------------------------------------ read budget

    /**
     * {@code readBudget} on completions: connection A's peer sends 64 KiB, then B's peer 10 bytes,
     * while the reactor is held in a task, so the next enter reaps A's many receive CQEs (4 KiB
     * buffers) ahead of B's one in a single round. With a budget of 4 KiB, B's bytes are handed
     * over after at most 8 KiB of A's (the receive that crosses the budget, rounded up to a
     * buffer), not after all of A's; and A still gets every byte, in order. The order of
     * deliveries is what is counted, never time.
     */
    @Test
    void aFastSenderDoesNotStarveASecondConnectionWithinARound() throws Exception {
        int buffer = 4096;
        Reactor r = start(o -> o.withBuffers(64, buffer));
        int budget = buffer;
        var options = ServerOptions.defaults().withConnection(ConnectionOptions.builder().readBudget(budget).build());
        record Delivery(TcpConnection c, int bytes) {}
        var order = new ArrayList<Delivery>(); // reactor thread only
        var opened = new LinkedBlockingQueue<TcpConnection>();
        var received = new java.util.IdentityHashMap<TcpConnection, java.io.ByteArrayOutputStream>();
        try (Server server = Server.bind(group, loopback(0), options, () -> new ConnectionHandler() {
                 @Override
                 public void onOpen(Connection c) {
                     received.put((TcpConnection) c, new java.io.ByteArrayOutputStream());
                     opened.add((TcpConnection) c);
                 }

                 @Override
                 public void onRead(Connection c, MemorySegment data) {
                     order.add(new Delivery((TcpConnection) c, (int) data.byteSize()));
                     received.get(c).writeBytes(data.toArray(ValueLayout.JAVA_BYTE));
                 }
             });
             Socket peerA = connect(server);
             Socket peerB = connect(server)) {
            TcpConnection a = opened.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            TcpConnection b = opened.poll(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(b);
            if (a.remoteAddress().getPort() != peerA.getLocalPort()) { // accepted in the other order
                TcpConnection t = a;
                a = b;
                b = t;
            }
            for (int i = 0; i < 3; i++) {
                on(r, () -> null); // both receives armed and submitted
            }
            int size = 64 * 1024;
            byte[] data = new byte[size];
            for (int i = 0; i < size; i++) {
                data[i] = (byte) (i * 13 + (i >>> 9));
            }
            var hold = new java.util.concurrent.CountDownLatch(1);
            var held = new java.util.concurrent.CountDownLatch(1);
            r.execute(() -> {
                held.countDown();
                try {
                    hold.await(WAIT_SECONDS, TimeUnit.SECONDS); // the test holds the reactor while the peers send
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            await(held);
            try {
                peerA.getOutputStream().write(data); // loopback: in A's receive queue when write returns
                peerB.getOutputStream().write("B's 10 b.".getBytes());
            } finally {
                hold.countDown();
            }
            TcpConnection fa = a;
            TcpConnection fb = b;
            eventually("every byte arrived", () -> {
                try {
                    return on(r, () -> received.get(fa).size() == size && received.get(fb).size() == 9);
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            var result = on(r, () -> {
                long aBeforeB = 0;
                int aDeliveries = 0;
                for (Delivery d : order) {
                    if (d.c() == fb) {
                        break;
                    }
                    aBeforeB += d.bytes();
                    aDeliveries++;
                }
                return new long[] {aBeforeB, aDeliveries, order.size()};
            });
            assertTrue(result[0] <= 2L * buffer,
                    "B waited for " + result[0] + " bytes of A in " + result[1] + " deliveries (of " + result[2] + ")");
            assertArrayEquals(data, on(r, () -> received.get(fa).toByteArray()), "A: every byte, in order");
        }
    }

    // ------------------------------------------------------------------ receive buffers

    /**
     * The group option sizes each reactor's provided-buffer ring: with 4 buffers of 4 KiB, a 64 KiB
     * burst arrives in receives of at most 4 KiB (with the default 16 KiB buffers some would be
     * larger), every byte in order.
     */
    @Test
    void theGroupOptionSizesTheReceiveBuffers() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("uring-ops-")
                .withIo(ReactorGroup.Io.URING).withUringBuffers(4, 4096));
        Reactor r = group.reactor(0);
        assertEquals(ReactorGroup.Io.URING, r.io());
        var largest = new java.util.concurrent.atomic.AtomicLong();
        var received = new java.io.ByteArrayOutputStream(); // reactor thread only
        try (Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override
                 public void onRead(Connection c, MemorySegment data) {
                     largest.accumulateAndGet(data.byteSize(), Math::max);
                     received.writeBytes(data.toArray(ValueLayout.JAVA_BYTE));
                 }
             });
             Socket peer = connect(server)) {
            int size = 64 * 1024;
            byte[] data = new byte[size];
            for (int i = 0; i < size; i++) {
                data[i] = (byte) (i * 5 + (i >>> 11));
            }
            peer.getOutputStream().write(data);
            eventually("every byte arrived", () -> {
                try {
                    return on(r, received::size) == size;
                } catch (Exception e) {
                    throw new AssertionError(e);
                }
            });
            assertEquals(4, on(r, () -> NetContext.of(r).transport.buffers().count()));
            assertTrue(largest.get() <= 4096, "receives of at most one 4 KiB buffer: " + largest.get());
            assertArrayEquals(data, on(r, received::toByteArray));
        }
    }

    /** The buffer options are checked with messages that say what is wrong. */
    @Test
    void theBufferOptionsAreChecked() {
        var o = ReactorGroup.Options.defaults();
        assertEquals(512, o.uringBuffers());
        assertEquals(16 * 1024, o.uringBufferSize());
        assertEquals(256, o.withUringBuffers(256, 4096).uringBuffers());
        for (int[] bad : new int[][] {{0, 4096}, {3, 4096}, {1 << 16, 4096}, {-2, 4096}}) {
            var e = assertThrows(IllegalArgumentException.class, () -> o.withUringBuffers(bad[0], bad[1]));
            assertEquals("uringBuffers must be a power of two from 1 to 32768: " + bad[0], e.getMessage());
        }
        for (int size : new int[] {0, 1023, (1 << 20) + 1}) {
            var e = assertThrows(IllegalArgumentException.class, () -> o.withUringBuffers(512, size));
            assertEquals("uringBufferSize must be from 1024 to 1048576 bytes: " + size, e.getMessage());
        }
    }
}
