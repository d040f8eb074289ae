package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.net.SocketException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The close promise through the net layer: chained closes complete, accepted writes are sent or reported. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class CloseEdgesNetTest {
    private ReactorGroup group;
    private Server server;

    private void start(int threads, ConnectionHandler serverSide) throws Exception {
        start(threads, ServerOptions.defaults(), serverSide);
    }

    private void start(int threads, ServerOptions options, ConnectionHandler serverSide) throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(threads).withThreadNamePrefix("edge-net-"));
        server = Server.bind(group, loopback(0), options, () -> serverSide);
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
        }
        if (group != null) {
            group.close(Duration.ofSeconds(WAIT_SECONDS));
        }
    }

    /** The proxy pattern: when A closes, its onClose aborts B; B's close future must complete. */
    @RepeatedTest(3)
    void anAbortChainedFromOnCloseCompletesTheOtherConnectionsCloseFuture() throws Exception {
        var serverConns = new java.util.concurrent.LinkedBlockingQueue<Connection>();
        start(1, new ConnectionHandler() {
            @Override public void onOpen(Connection c) {
                serverConns.add(c);
            }
            @Override public void onRead(Connection c, MemorySegment data) {}
        });
        // The clients live on a reactor of their own: nothing the server side does can wake it.
        try (ReactorGroup clients = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("edge-cli-"))) {
        Connection b = await(Client.connect(clients.reactor(0), loopback(server.port()), new ConnectionHandler() {
            @Override public void onRead(Connection c, MemorySegment data) {}
        }));
        Connection a = await(Client.connect(clients.reactor(0), loopback(server.port()), new ConnectionHandler() {
            @Override public void onRead(Connection c, MemorySegment data) {}
            @Override public void onClose(Connection c, Throwable cause) {
                b.abort();
            }
        }));
        Connection sa = serverConns.poll(WAIT_SECONDS, TimeUnit.SECONDS);
        Connection sb = serverConns.poll(WAIT_SECONDS, TimeUnit.SECONDS);
        assertNotNull(sa);
        assertNotNull(sb);
        a.close(); // from this thread: one wakeup, nothing after it
        a.closeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
        try { // stalled before: nothing woke the reactor again
            b.closeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            fail("the abort chained from onClose never completed: b=" + b + " a=" + a
                    + " " + clients.reactor(0).stats());
        }
        assertFalse(b.isOpen());
        }
    }

    /**
     * Writers on other threads race a graceful close: every write that answered true must reach
     * the peer, because a graceful close sends what is queued. Before the fix a write accepted
     * after the last drain of the inbox was dropped in silence.
     */
    @RepeatedTest(15)
    void aForeignWriteRacingACloseIsSentOrRefused() throws Exception {
        var connected = new CompletableFuture<Connection>();
        start(1, new ConnectionHandler() {
            @Override public void onOpen(Connection c) {
                connected.complete(c);
            }
            @Override public void onRead(Connection c, MemorySegment data) {}
        });
        try (Socket peer = connect(server)) {
            Connection c = connected.get(WAIT_SECONDS, TimeUnit.SECONDS);
            var accepted = new AtomicLong();
            int writers = 3;
            var go = new CountDownLatch(1);
            var done = new CountDownLatch(writers);
            byte[] msg = new byte[37];
            for (int w = 0; w < writers; w++) {
                Thread.ofPlatform().start(() -> {
                    try {
                        go.await();
                        for (int i = 0; i < 20_000; i++) {
                            if (!c.write(msg)) {
                                break; // refused: the close has begun
                            }
                            accepted.addAndGet(msg.length);
                        }
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                    } finally {
                        done.countDown();
                    }
                });
            }
            var received = new AtomicLong();
            Thread reader = Thread.ofPlatform().start(() -> {
                byte[] buf = new byte[65536];
                try (InputStream in = peer.getInputStream()) {
                    int n;
                    while ((n = in.read(buf)) > 0) {
                        received.addAndGet(n);
                    }
                } catch (Exception ignored) {
                    // the assertion below reports what arrived
                }
            });
            go.countDown();
            Thread.sleep(1);
            c.close();
            assertTrue(done.await(WAIT_SECONDS, TimeUnit.SECONDS));
            c.closeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
            reader.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            assertEquals(accepted.get(), received.get(), "every write that answered true reaches the peer");
        }
    }

    /** A close after shutdownOutput() has already sent the FIN must still close the connection. */
    @Test
    void aCloseAfterTheFinWasSentCompletes() throws Exception {
        var connected = new CompletableFuture<Connection>();
        start(1, new ConnectionHandler() {
            @Override public void onOpen(Connection c) {
                c.shutdownOutput(); // nothing queued: the FIN goes at once
                connected.complete(c);
            }
            @Override public void onRead(Connection c, MemorySegment data) {}
        });
        try (Socket peer = connect(server)) {
            Connection c = connected.get(WAIT_SECONDS, TimeUnit.SECONDS);
            assertEquals(-1, peer.getInputStream().read(), "the peer sees the FIN");
            c.close(); // the peer keeps its side open: only our close can end this connection
            try {
                c.closeFuture().get(WAIT_SECONDS, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException e) {
                fail("a close after the FIN never completed: " + c);
            }
        }
    }

    /** Bytes still queued when the group shuts the connection down are reported by its onClose. */
    @Test
    void bytesDroppedByAShutdownAreReportedToOnClose() throws Exception {
        var cause = new AtomicReference<Throwable>();
        var closed = new CountDownLatch(1);
        var connected = new CompletableFuture<Connection>();
        var small = ServerOptions.defaults().withConnection(ConnectionOptions.builder().bufferSizes(4096, 4096).build());
        start(1, small, new ConnectionHandler() {
            @Override public void onOpen(Connection c) {
                connected.complete(c);
            }
            @Override public void onRead(Connection c, MemorySegment data) {}
            @Override public void onClose(Connection c, Throwable why) {
                cause.set(why);
                closed.countDown();
            }
        });
        try (Socket peer = connect(server)) { // never reads: the queue cannot drain
            Connection c = connected.get(WAIT_SECONDS, TimeUnit.SECONDS);
            byte[] chunk = new byte[64 * 1024];
            // Fill the kernel's buffers (small ones, set below) and then the connection's queue.
            for (int i = 0; i < 2_000 && c.isWritable(); i++) {
                assertTrue(c.write(chunk));
                Thread.sleep(1);
            }
            assertFalse(c.isWritable(), "the queue should have passed its high watermark");
            assertTrue(c.queuedBytes() > 0);
            server.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
            server = null;
            group.close(Duration.ofSeconds(WAIT_SECONDS));
            group = null;
            await(closed);
            assertInstanceOf(SocketException.class, cause.get(), "accepted bytes were dropped: onClose must say so");
            assertTrue(cause.get().getMessage().contains("not sent"), cause.get().getMessage());
        }
    }
}
