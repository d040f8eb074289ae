package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.testing.Signals;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The syscalls a short connection does not need: the {@code accept4} that would only say
 * {@code EAGAIN}, and the {@code read} that would only return 0 when the FIN came with the data.
 * Reads are counted by the kernel ({@code syscr} in {@code /proc/self/task/<tid>/io}, the reactor
 * thread's {@code read} calls). Where a test needs the data and the FIN (or urgent data) to be in
 * one edge, it holds the reactor in a task until {@code /proc/net/tcp} shows the server side's
 * socket in the wanted state, then lets it go.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class SyscallSavingsTest {
    private ReactorGroup group;
    private Reactor reactor;
    private final List<Server> servers = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("savings-test-"));
        reactor = group.reactor(0);
    }

    @AfterEach
    void stop() throws Exception {
        for (Server s : servers) {
            s.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
        }
        group.close(Duration.ofSeconds(WAIT_SECONDS));
    }

    private Server serve(ServerOptions options, java.util.function.Supplier<ConnectionHandler> handlers) throws Exception {
        Server s = Server.bind(group, loopback(0), options, handlers);
        servers.add(s);
        return s;
    }

    private static String text(MemorySegment data) {
        return new String(data.toArray(ValueLayout.JAVA_BYTE), StandardCharsets.US_ASCII);
    }

    /** Echoes; at end of stream answers "bye" (reading EOF does not close writing) and closes. */
    static class Echo implements ConnectionHandler {
        final StringBuffer log = new StringBuffer();
        final CountDownLatch closed = new CountDownLatch(1);

        @Override
        public void onRead(Connection c, MemorySegment data) {
            log.append(text(data));
            c.write(data);
        }

        @Override
        public void onPeerClosed(Connection c) {
            log.append("|EOF");
            c.write("bye".getBytes(StandardCharsets.US_ASCII));
            c.close();
        }

        @Override
        public void onClose(Connection c, Throwable why) {
            if (why != null) {
                log.append("|").append(why);
            }
            closed.countDown();
        }
    }

    /** Holds the reactor thread in a task until {@link #release()}. */
    private final class Hold {
        final CountDownLatch held = new CountDownLatch(1);
        final CountDownLatch go = new CountDownLatch(1);

        Hold() throws InterruptedException {
            reactor.execute(() -> {
                held.countDown();
                try {
                    go.await(WAIT_SECONDS, TimeUnit.SECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
            await(held);
        }

        void release() {
            go.countDown();
        }
    }

    private int reactorTid() throws Exception {
        CompletableFuture<Integer> tid = new CompletableFuture<>();
        reactor.execute(() -> tid.complete(Signals.gettid()));
        return await(tid);
    }

    /** {@return the {@code read} calls the thread has made, as the kernel counts them} */
    private static long readCalls(int tid) throws IOException {
        for (String line : Files.readAllLines(Path.of("/proc/self/task/" + tid + "/io"))) {
            if (line.startsWith("syscr:")) {
                return Long.parseLong(line.substring(6).trim());
            }
        }
        throw new IllegalStateException("no syscr in /proc/self/task/" + tid + "/io");
    }

    /**
     * Waits until the server's side of the connection from {@code clientPort} is in {@code state}
     * (hex, as {@code /proc/net/tcp} writes it: 01 established, 08 close-wait) with
     * {@code rxQueue} bytes of sequence space not yet read (a FIN counts one).
     */
    private static void awaitServerSide(Server server, int clientPort, String state, int rxQueue) throws Exception {
        String local = String.format(Locale.ROOT, "0100007F:%04X", server.localAddress().getPort());
        String remote = String.format(Locale.ROOT, "0100007F:%04X", clientPort);
        eventually("the server side of :" + clientPort + " in state " + state + " with " + rxQueue + " queued", () -> {
            try {
                for (String line : Files.readAllLines(Path.of("/proc/net/tcp"))) {
                    String[] f = line.trim().split("\\s+");
                    if (f.length > 4 && f[1].equals(local) && f[2].equals(remote)) {
                        return f[3].equals(state) && Integer.parseInt(f[4].split(":")[1], 16) == rxQueue;
                    }
                }
                return false;
            } catch (IOException e) {
                throw new java.io.UncheckedIOException(e);
            }
        });
    }

    /** One connection: {@code size} bytes then FIN, all queued before the reactor looks; {@return its reads} */
    private long dataThenFin(Server server, int tid, List<Echo> echoes, int index, int size) throws Exception {
        byte[] msg = "q".repeat(size).getBytes(StandardCharsets.US_ASCII);
        Hold hold = new Hold();
        try (Socket s = connect(server)) {
            s.getOutputStream().write(msg);
            s.shutdownOutput();
            awaitServerSide(server, s.getLocalPort(), "08", msg.length + 1);
            long before = readCalls(tid);
            hold.release();
            InputStream in = s.getInputStream();
            assertArrayEquals((new String(msg, StandardCharsets.US_ASCII) + "bye").getBytes(StandardCharsets.US_ASCII),
                    in.readAllBytes(), "the echo, then the answer to EOF");
            await(echoes.get(index).closed);
            return readCalls(tid) - before;
        } finally {
            hold.release();
        }
    }

    @Test
    void dataWithTheFinIsReadOnceAndEndsTheStream() throws Exception {
        List<Echo> echoes = new java.util.concurrent.CopyOnWriteArrayList<>();
        Server server = serve(ServerOptions.defaults(), () -> {
            Echo e = new Echo();
            echoes.add(e);
            return e;
        });
        int tid = reactorTid();
        dataThenFin(server, tid, echoes, 0, 64); // warms up the path (class loading reads too)
        long reads = dataThenFin(server, tid, echoes, 1, 64);
        assertEquals("q".repeat(64) + "|EOF", echoes.get(1).log.toString(), "the data, then the end of stream, no error");
        if (group.reactor(0).io() == ReactorGroup.Io.URING) {
            assertEquals(0, reads, "io_uring transport: the bytes and the end come as receive CQEs, no read(2)");
        } else {
            assertEquals(1, reads, "the 64 bytes and the end of stream in one read: no read that returns 0");
        }
    }

    @Test
    void aReadThatFillsTheBufferReadsOnForTheEnd() throws Exception {
        // A full read does not say the queue is empty, FIN or not: the end needs a read of its own.
        List<Echo> echoes = new java.util.concurrent.CopyOnWriteArrayList<>();
        Server server = serve(ServerOptions.defaults(), () -> {
            Echo e = new Echo();
            echoes.add(e);
            return e;
        });
        int tid = reactorTid();
        int size = NetContext.READ_BUFFER_SIZE;
        dataThenFin(server, tid, echoes, 0, size); // warms up the path (class loading reads too)
        long reads = dataThenFin(server, tid, echoes, 1, size);
        assertEquals("q".repeat(size) + "|EOF", echoes.get(1).log.toString());
        if (group.reactor(0).io() == ReactorGroup.Io.URING) {
            assertEquals(0, reads, "io_uring transport: the bytes and the end come as receive CQEs, no read(2)");
        } else {
            assertEquals(2, reads, "one full read, then the one that returns 0");
        }
    }

    @Test
    void aPausedReaderGetsTheEndOfStreamOnlyAfterItResumes() throws Exception {
        // The FIN came with the data, but the handler paused in onRead: the end is not delivered
        // while paused (the resume reads it).
        AtomicReference<Connection> conn = new AtomicReference<>();
        Echo echo = new Echo() {
            @Override
            public void onRead(Connection c, MemorySegment data) {
                super.onRead(c, data);
                conn.set(c);
                c.pauseReading();
            }
        };
        Server server = serve(ServerOptions.defaults(), () -> echo);
        Hold hold = new Hold();
        try (Socket s = connect(server)) {
            s.getOutputStream().write("q".repeat(64).getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            awaitServerSide(server, s.getLocalPort(), "08", 65);
            hold.release();
            assertArrayEquals("q".repeat(64).getBytes(StandardCharsets.US_ASCII), readExactly(s.getInputStream(), 64));
            for (int i = 0; i < 3; i++) { // rounds of the reactor while paused
                CountDownLatch round = new CountDownLatch(1);
                reactor.execute(round::countDown);
                await(round);
            }
            assertEquals("q".repeat(64), echo.log.toString(), "no end of stream while paused");
            conn.get().resumeReading();
            assertArrayEquals("bye".getBytes(StandardCharsets.US_ASCII), s.getInputStream().readAllBytes());
            await(echo.closed);
            assertEquals("q".repeat(64) + "|EOF", echo.log.toString());
        } finally {
            hold.release();
        }
    }

    @Test
    void urgentDataBeforeTheFinDoesNotCutTheStreamShort() throws Exception {
        // Linux stops a read at the urgent mark: "abc" comes back short although "def" and the
        // FIN are queued behind it. The end of stream must not be taken from that short read.
        Echo echo = new Echo();
        Server server = serve(ServerOptions.defaults(), () -> echo);
        Hold hold = new Hold();
        try (Socket s = connect(server)) {
            OutputStream out = s.getOutputStream();
            out.write("abc".getBytes(StandardCharsets.US_ASCII));
            s.sendUrgentData('X'); // out of band: not in the stream (SO_OOBINLINE is off)
            out.write("def".getBytes(StandardCharsets.US_ASCII));
            s.shutdownOutput();
            awaitServerSide(server, s.getLocalPort(), "08", 8);
            hold.release();
            assertEquals("abcdefbye", new String(s.getInputStream().readAllBytes(), StandardCharsets.US_ASCII));
            await(echo.closed);
            assertEquals("abcdef|EOF", echo.log.toString());
        } finally {
            hold.release();
        }
    }

    @Test
    void urgentDataWithoutFinDoesNotStallTheRead() throws Exception {
        // The same stop at the urgent mark without a FIN: a short read there is not "the queue is
        // empty", and nothing else will arrive to raise another edge.
        Echo echo = new Echo();
        Server server = serve(ServerOptions.defaults(), () -> echo);
        Hold hold = new Hold();
        try (Socket s = connect(server)) {
            OutputStream out = s.getOutputStream();
            out.write("abc".getBytes(StandardCharsets.US_ASCII));
            s.sendUrgentData('X');
            out.write("def".getBytes(StandardCharsets.US_ASCII));
            awaitServerSide(server, s.getLocalPort(), "01", 7);
            hold.release();
            assertArrayEquals("abcdef".getBytes(StandardCharsets.US_ASCII), readExactly(s.getInputStream(), 6));
            assertEquals("abcdef", echo.log.toString());
        } finally {
            hold.release();
        }
    }

    @Test
    void connectionsOneAtATimeNeverMeetAnEmptyQueue() throws Exception {
        Server server = serve(ServerOptions.defaults(), Echo::new);
        byte[] msg = "q".repeat(64).getBytes(StandardCharsets.US_ASCII);
        for (int i = 0; i < 20; i++) {
            try (Socket s = connect(server)) {
                s.getOutputStream().write(msg);
                assertArrayEquals(msg, readExactly(s.getInputStream(), msg.length));
            }
        }
        Listener l = server.listeners.getFirst();
        assertEquals(20, l.counts.get(NetStats.Counter.ACCEPTS));
        assertEquals(0, l.acceptsEmpty.get(), "accept4 calls that found the queue empty (EAGAIN)");
    }

    @Test
    void aBurstLargerThanTheBoundIsAllAccepted() throws Exception {
        int bound = 4;
        int burst = 50;
        AtomicInteger opened = new AtomicInteger();
        ServerOptions options = new ServerOptions(ServerOptions.defaults().backlog(), false, bound,
                ServerOptions.defaults().connection());
        Server server = serve(options, () -> new Echo() {
            @Override
            public void onOpen(Connection c) {
                opened.incrementAndGet();
            }
        });
        List<Socket> clients = new ArrayList<>();
        Hold hold = new Hold();
        try {
            for (int i = 0; i < burst; i++) { // all queued in the kernel while the reactor is held
                clients.add(connect(server));
            }
            hold.release();
            byte[] msg = "ping".getBytes(StandardCharsets.US_ASCII);
            for (Socket s : clients) {
                s.getOutputStream().write(msg);
            }
            for (Socket s : clients) {
                assertArrayEquals(msg, readExactly(s.getInputStream(), msg.length));
            }
            assertEquals(burst, opened.get());
            assertEquals(burst, server.stats().accepted());
        } finally {
            hold.release();
            for (Socket s : clients) {
                s.close();
            }
        }
    }
}
