package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.reactor.UringTesting;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.TransportRing;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The io_uring transport's own promises: tokens, the close barrier on completions, buffers, pause. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class UringTransportTest {
    private ReactorGroup group;

    private ReactorGroup start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("uring-t-")
                .withIo(ReactorGroup.Io.URING));
        assertEquals(ReactorGroup.Io.URING, group.reactor(0).io(), "this kernel (6.15+) runs the io_uring transport");
        return group;
    }

    @AfterEach
    void stop() throws Exception {
        if (group != null) {
            group.close(Duration.ofSeconds(20));
        }
    }

    /**
     * Writes 256 KiB chunks to {@code c}, whose peer does not read, until a send is in flight on
     * a full socket with more queued behind it (bounded by the queue limit).
     */
    static void fillUntilASendIsStuck(Reactor r, TcpConnection c) throws Exception {
        byte[] chunk = new byte[256 * 1024];
        for (int i = 0; i < 200 && !on(r, () -> c.uring.sendInFlight() && c.queuedBytes() > chunk.length); i++) {
            on(r, () -> c.write(chunk));
        }
    }

    static <T> T on(Reactor r, java.util.function.Supplier<T> s) throws Exception {
        return CompletableFuture.supplyAsync(s, r).get(10, TimeUnit.SECONDS);
    }

    /** Echoes, and hands each connection (on open) to the test. */
    static final class Echo implements ConnectionHandler {
        final LinkedBlockingQueue<TcpConnection> opened;
        final AtomicInteger peerClosed = new AtomicInteger();

        Echo(LinkedBlockingQueue<TcpConnection> opened) {
            this.opened = opened;
        }

        @Override
        public void onOpen(Connection c) {
            opened.add((TcpConnection) c);
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
        }

        @Override
        public void onPeerClosed(Connection c) {
            peerClosed.incrementAndGet();
            c.close();
        }
    }

    /**
     * Netty's io_uring bug, made here on purpose: a CQE carrying the token of a closed connection
     * arrives after its fd number and its slot were both reused by a new connection. The
     * generation in the token differs, so it is dropped and counted; without the check it would
     * reach the new connection as a receive of 0 bytes, an end of stream that never happened.
     */
    @Test
    void aStaleCqeAfterCloseAndFdReuseIsDroppedAndNeverReachesTheNewConnection() throws Exception {
        Reactor r = start().reactor(0);
        var opened = new LinkedBlockingQueue<TcpConnection>();
        var echo = new Echo(opened);
        // Both client sockets exist before the first server connection closes, so the next fd
        // number this process frees and takes again is that connection's.
        try (Server server = Server.bind(group, loopback(0), () -> echo);
             Socket first = connect(server);
             SocketChannel second = SocketChannel.open()) {
            TcpConnection a = opened.poll(10, TimeUnit.SECONDS);
            assertNotNull(a);
            long staleToken = on(r, () -> a.uring.token(UringStream.OP_RECV));
            int fdA = a.fd;
            int slotA = a.uring.slot;
            a.close(); // the server closes: its receive is cancelled, every CQE reaped, the fd released
            await(a.closeFuture());
            second.connect(loopback(server.port()));
            TcpConnection b = opened.poll(10, TimeUnit.SECONDS);
            assertNotNull(b);
            assertEquals(fdA, b.fd, "the new connection got the closed one's fd number");
            assertEquals(slotA, b.uring.slot, "and its completion slot");
            long bToken = on(r, () -> b.uring.token(UringStream.OP_RECV));
            assertNotEquals(staleToken, bToken, "same slot, new generation");

            long staleBefore = r.stats().get(Counter.URING_STALE_CQES);
            // The late CQE: a NOP (res 0) carrying the old receive token.
            on(r, () -> {
                TransportRing t = b.ctx.transport;
                t.ring().prepNop(t.sqe(), staleToken);
                return null;
            });
            eventually("the stale CQE is counted", () -> r.stats().get(Counter.URING_STALE_CQES) == staleBefore + 1);

            second.write(ByteBuffer.wrap("still here".getBytes()));
            ByteBuffer back = ByteBuffer.allocate(10);
            while (back.hasRemaining() && second.read(back) >= 0) {
                // blocking read until the echo is in
            }
            assertEquals("still here", new String(back.array()));
            assertEquals(0, echo.peerClosed.get(), "no connection saw an end of stream");
            assertTrue(b.isOpen());
        }
    }

    /**
     * A close with a multishot receive and a send both in flight: the handle's close cancels them,
     * and {@code close(fd)} waits until both CQEs are reaped. Right after the close is asked for,
     * at the point where the epoll transport would already release the fd, it is still open; when
     * the close future completes, no op of the connection is in flight.
     */
    @RepeatedTest(3)
    void aCloseWithARecvAndASendInFlightWaitsForBothCqesBeforeCloseFd() throws Exception {
        Reactor r = start().reactor(0);
        var opened = new LinkedBlockingQueue<TcpConnection>();
        try (Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override
                 public void onOpen(Connection c) {
                     opened.add((TcpConnection) c);
                 }

                 @Override
                 public void onRead(Connection c, MemorySegment data) {}
             });
             Socket peer = connect(server)) { // never reads: the server's send stays in flight
            TcpConnection c = opened.poll(10, TimeUnit.SECONDS);
            assertNotNull(c);
            // Queue until a send is in flight and the socket buffer is full (bounded by the queue limit).
            fillUntilASendIsStuck(r, c);
            assertTrue(on(r, () -> c.uring.sendInFlight()), "a send is in flight");
            int fd = c.fd;
            long cancelsBefore = r.stats().get(Counter.URING_CANCELS);
            var opsAtRelease = new CompletableFuture<Integer>();
            record Snapshot(boolean fdOpen, boolean closeDone, int ops) {}
            Snapshot afterRequest = on(r, () -> {
                assertEquals(2, c.uring.opsInFlight(), "the multishot receive and the send");
                // runs on the reactor thread right after the fd was released and onClose ran
                c.handle().closeFuture().thenRun(() -> opsAtRelease.complete(c.uring.opsInFlight()));
                c.abort(); // on the reactor thread: the close is processed here, the cancels queued
                return new Snapshot(isSocket(fd), c.handle().closeFuture().isDone(), c.uring.opsInFlight());
            });
            assertTrue(afterRequest.fdOpen(), "the fd is not closed while ops are in flight");
            assertFalse(afterRequest.closeDone(), "the close waits for the CQEs");
            assertEquals(4, afterRequest.ops(), "receive, send and the two cancels in flight");
            assertEquals(0, await(opsAtRelease), "every CQE was reaped before close(fd)");
            assertEquals(cancelsBefore + 2, r.stats().get(Counter.URING_CANCELS));
        }
    }

    private static boolean isSocket(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString().startsWith("socket:");
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /**
     * Two provided buffers of 64 bytes for 16 connections sending 32 KiB each at once: the ring
     * runs dry over and over ({@code ENOBUFS} ends the multishot receive, which is re-armed), and
     * every byte still comes back, in order.
     */
    @Test
    void enobufsWithATinyBufferRingLosesNoData() throws Exception {
        var before = UringTesting.transportOptions(TransportRing.Options.defaults().withBuffers(2, 64));
        try {
            start();
        } finally {
            UringTesting.transportOptions(before);
        }
        Reactor r = group.reactor(0);
        int clients = 16;
        int size = 32 * 1024;
        var failures = new ConcurrentLinkedQueue<Throwable>();
        try (Server server = Server.bind(group, loopback(0), () -> new Echo(new LinkedBlockingQueue<>()))) {
            var go = new CountDownLatch(1);
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < clients; i++) {
                int id = i;
                threads.add(Thread.ofPlatform().start(() -> {
                    try (Socket s = connect(server)) {
                        byte[] data = new byte[size];
                        for (int k = 0; k < size; k++) {
                            data[k] = (byte) (k * 31 + id);
                        }
                        go.await();
                        OutputStream out = s.getOutputStream();
                        Thread writer = Thread.ofPlatform().start(() -> {
                            try {
                                out.write(data);
                            } catch (Exception e) {
                                failures.add(e);
                            }
                        });
                        InputStream in = s.getInputStream();
                        byte[] back = readExactly(in, size);
                        writer.join();
                        if (!Arrays.equals(data, back)) {
                            failures.add(new AssertionError("client " + id + ": the echo differs"));
                        }
                    } catch (Throwable t) {
                        failures.add(t);
                    }
                }));
            }
            go.countDown();
            for (Thread t : threads) {
                t.join(60_000);
            }
            assertTrue(failures.isEmpty(), () -> "failures: " + failures);
            assertTrue(r.stats().get(Counter.URING_BUFFERS_EXHAUSTED) > 0,
                    "two 64-byte buffers for 16 senders ran dry (else this proves nothing): " + r.stats());
            assertTrue(r.stats().get(Counter.URING_BUFFER_REFILLS) > 0);
        }
    }

    /**
     * Pause cancels the receive, resume re-arms it: no {@code onRead} while paused, and after the
     * resume every byte arrives in order, then the end of stream.
     */
    @Test
    void pauseAndResumeReadingDeliverEveryByteInOrderAndNothingWhilePaused() throws Exception {
        Reactor r = start().reactor(0);
        var opened = new LinkedBlockingQueue<TcpConnection>();
        var paused = new AtomicBoolean();
        var readWhilePaused = new AtomicInteger();
        var received = new java.io.ByteArrayOutputStream();
        var ended = new CountDownLatch(1);
        var firstRead = new CountDownLatch(1);
        try (Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
                 @Override
                 public void onOpen(Connection c) {
                     opened.add((TcpConnection) c);
                 }

                 @Override
                 public void onRead(Connection c, MemorySegment data) {
                     if (paused.get()) {
                         readWhilePaused.incrementAndGet();
                     }
                     received.writeBytes(data.toArray(ValueLayout.JAVA_BYTE));
                     if (firstRead.getCount() > 0) {
                         paused.set(true);
                         c.pauseReading();
                         firstRead.countDown();
                     }
                 }

                 @Override
                 public void onPeerClosed(Connection c) {
                     if (paused.get()) {
                         readWhilePaused.incrementAndGet();
                     }
                     ended.countDown();
                     c.close();
                 }
             });
             Socket peer = connect(server)) {
            TcpConnection c = opened.poll(10, TimeUnit.SECONDS);
            assertNotNull(c);
            byte[] data = new byte[200_000];
            for (int i = 0; i < data.length; i++) {
                data[i] = (byte) (i % 251);
            }
            OutputStream out = peer.getOutputStream();
            out.write(data, 0, 1000);
            await(firstRead);
            out.write(data, 1000, data.length - 1000);
            peer.shutdownOutput();
            // The reactor has had its chance to deliver (it must not): a few round trips.
            for (int i = 0; i < 20; i++) {
                on(r, () -> null);
            }
            assertEquals(0, readWhilePaused.get(), "no onRead and no end while paused");
            paused.set(false);
            c.resumeReading();
            await(ended);
            assertEquals(0, readWhilePaused.get());
            assertArrayEquals(data, on(r, received::toByteArray), "every byte, in order, then the end");
        }
    }

    /**
     * The ring itself fails while ops are in flight: its fd is replaced under it, so the next
     * enter is refused and the reactor's loop fails. Every close must still complete: the
     * listener's (a multishot accept armed), three idle connections' (a multishot receive each)
     * and one whose send is stuck behind a peer that does not read. The ring is torn down (so the
     * kernel cancels its requests), each op counts as ended, the fds are closed — the peers see
     * their connections end — and {@code onClose} runs once each, on the reactor thread, naming
     * the failure. Without it the references the ops hold are never dropped and none of these
     * closes completes.
     */
    @Test
    void aRingThatFailsWithOpsInFlightStillClosesEveryConnection() throws Throwable {
        Reactor r = start().reactor(0);
        var opened = new LinkedBlockingQueue<TcpConnection>();
        var onClose = new java.util.concurrent.ConcurrentHashMap<Connection, String>();
        var onCloseCalls = new AtomicInteger();
        Server server = Server.bind(group, loopback(0), () -> new ConnectionHandler() {
            @Override
            public void onOpen(Connection c) {
                opened.add((TcpConnection) c);
            }

            @Override
            public void onRead(Connection c, MemorySegment data) {}

            @Override
            public void onClose(Connection c, Throwable cause) {
                onCloseCalls.incrementAndGet();
                onClose.put(c, Thread.currentThread().getName() + ": " + cause);
            }
        });
        List<Socket> peers = new ArrayList<>();
        try {
            List<TcpConnection> conns = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                peers.add(connect(server));
                conns.add(opened.poll(10, TimeUnit.SECONDS));
                assertNotNull(conns.get(i), "accepted");
            }
            TcpConnection stuck = conns.get(3); // its peer never reads
            fillUntilASendIsStuck(r, stuck);
            assertTrue(on(r, () -> stuck.uring.sendInFlight()), "a send is in flight");
            for (TcpConnection c : conns) {
                eventually("a receive armed on " + c, () -> {
                    try {
                        return on(r, () -> c.uring.opsInFlight() > 0);
                    } catch (Exception e) {
                        throw new AssertionError(e);
                    }
                });
            }
            int ringFd = on(r, () -> stuck.ctx.transport.ring().fd());

            replaceWithEventfd(ringFd);
            wakeUntilStopped(r); // parked in the old ring: the wake ends that enter, the next one is refused
            var failure = r.terminationFuture().handle((v, t) -> t).get(WAIT_SECONDS, TimeUnit.SECONDS);
            assertNotNull(failure, "the loop failed");
            assertTrue(String.valueOf(failure).contains("io_uring_enter"), "names the call: " + failure);

            for (TcpConnection c : conns) {
                await(c.closeFuture());
                assertFalse(c.isOpen());
                String seen = onClose.get(c);
                assertNotNull(seen, "onClose ran for " + c);
                assertTrue(seen.startsWith("uring-t-"), "on the reactor thread: " + seen);
                assertTrue(seen.contains("failed"), "names the failure: " + seen);
            }
            assertEquals(conns.size(), onCloseCalls.get(), "onClose once per connection");
            for (Socket peer : peers) {
                assertConnectionEnds(peer);
            }
        } finally {
            server.close();
            for (Socket peer : peers) {
                peer.close();
            }
        }
    }

    /** The peer's side ends (end of stream or reset) before the bounded read timeout. */
    private static void assertConnectionEnds(Socket peer) throws java.io.IOException {
        InputStream in = peer.getInputStream();
        byte[] sink = new byte[64 * 1024];
        try {
            while (in.read(sink) >= 0) {
                // drain what was sent before the close
            }
        } catch (java.net.SocketTimeoutException e) {
            fail("the connection never ended: " + e);
        } catch (java.net.SocketException reset) {
            // reset: ended too
        }
    }
}
