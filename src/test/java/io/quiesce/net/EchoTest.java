package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.testing.FdSnapshot;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.InputStream;
import java.io.OutputStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.Socket;
import java.time.Duration;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class EchoTest {
    private ReactorGroup group;
    private Server server;

    /** The echo protocol with back-pressure, recording the largest queue it ever saw. */
    static class Echo implements ConnectionHandler {
        static final AtomicLong maxQueued = new AtomicLong();
        static final AtomicInteger pauses = new AtomicInteger();

        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
            maxQueued.accumulateAndGet(c.queuedBytes(), Math::max);
            if (!c.isWritable()) {
                pauses.incrementAndGet();
                c.pauseReading();
            }
        }

        @Override
        public void onWritable(Connection c) {
            c.resumeReading();
        }
    }

    @BeforeEach
    void start() throws Exception {
        raiseFileLimit(16_384);
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("echo-test-"));
        Echo.maxQueued.set(0);
        Echo.pauses.set(0);
        server = Server.bind(group, loopback(0), Echo::new);
    }

    @AfterEach
    void stop() throws Exception {
        server.closeAsync().get(WAIT_SECONDS, java.util.concurrent.TimeUnit.SECONDS);
        group.close(Duration.ofSeconds(WAIT_SECONDS));
    }

    @Test
    void echoesSmallMessagesOnEveryReactor() throws Exception {
        assertEquals(2, server.listeners());
        for (int i = 0; i < 20; i++) {
            try (Socket s = connect(server)) {
                byte[] msg = ("hello " + i).getBytes();
                s.getOutputStream().write(msg);
                assertArrayEquals(msg, readExactly(s.getInputStream(), msg.length));
            }
        }
        eventually("20 accepted", () -> server.stats().accepted() == 20);
    }

    @Test
    void hundredMegabytesEchoedByteExactToASlowReaderWithTheQueueBoundedByTheWatermarks() throws Exception {
        final long total = 100L << 20;
        final long seed = 0x5EED_CAFEL;
        ConnectionOptions o = server.options().connection();
        try (Socket s = connect(server)) {
            var writeFailure = new AtomicReference<Throwable>();
            Thread writer = Thread.ofPlatform().name("slow-reader-test-writer").start(() -> {
                try {
                    OutputStream out = s.getOutputStream();
                    var rnd = new SplittableRandom(seed);
                    byte[] block = new byte[37 * 1024]; // odd size: not aligned with any buffer
                    for (long sent = 0; sent < total; ) {
                        int n = (int) Math.min(block.length, total - sent);
                        fill(rnd, block, n);
                        out.write(block, 0, n);
                        sent += n;
                    }
                    s.shutdownOutput();
                } catch (Throwable t) {
                    writeFailure.set(t);
                }
            });
            InputStream in = s.getInputStream();
            var rnd = new SplittableRandom(seed);
            byte[] expected = new byte[37 * 1024];
            int expectedLen = 0;
            int expectedPos = 0;
            byte[] buf = new byte[16 * 1024];
            long received = 0;
            long sinceNap = 0;
            while (received < total) {
                int n = in.read(buf);
                assertTrue(n > 0, "stream ended after " + received + " bytes");
                for (int i = 0; i < n; i++) {
                    if (expectedPos == expectedLen) {
                        expectedLen = (int) Math.min(expected.length, total - received - i);
                        fill(rnd, expected, expectedLen);
                        expectedPos = 0;
                    }
                    if (buf[i] != expected[expectedPos++]) {
                        fail("byte " + (received + i) + " differs");
                    }
                }
                received += n;
                sinceNap += n;
                if (sinceNap >= 128 * 1024) { // the slow reader: a nap every 128 KiB
                    sinceNap = 0;
                    Thread.sleep(1);
                }
            }
            assertEquals(-1, in.read(), "the echo ends with the client's FIN");
            writer.join(WAIT_SECONDS * 1000);
            assertNull(writeFailure.get());
        }
        assertTrue(Echo.pauses.get() > 0, "the reader was slow enough to make the queue pass the high watermark");
        long bound = o.highWatermark() + NetContext.READ_BUFFER_SIZE;
        assertTrue(Echo.maxQueued.get() <= bound, "queued at most " + bound + " bytes, saw " + Echo.maxQueued.get());
    }

    private static void fill(SplittableRandom rnd, byte[] b, int n) {
        for (int i = 0; i < n; i += 8) {
            long v = rnd.nextLong();
            for (int k = 0; k < 8 && i + k < n; k++) {
                b[i + k] = (byte) (v >>> (8 * k));
            }
        }
    }

    @Test
    void fiveThousandConcurrentConnectionsEachEchoAndCloseWithNoFdLeft() throws Exception {
        final int conns = 5_000;
        final int size = 64;
        FdSnapshot before = FdSnapshot.take();
        try (ReactorGroup clients = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2)
                .withThreadNamePrefix("echo-test-client-"))) {
            var done = new CountDownLatch(conns);
            var failures = new AtomicInteger();
            var firstFailure = new AtomicReference<Throwable>();
            for (int i = 0; i < conns; i++) {
                byte[] msg = new byte[size];
                Arrays.fill(msg, (byte) i);
                msg[0] = (byte) (i >>> 8);
                ConnectionHandler h = new ConnectionHandler() {
                    final byte[] got = new byte[size];
                    int n;

                    @Override
                    public void onOpen(Connection c) {
                        c.write(msg);
                    }

                    @Override
                    public void onRead(Connection c, MemorySegment data) {
                        int len = (int) Math.min(data.byteSize(), size - n);
                        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, 0, got, n, len);
                        n += len;
                        if (n == size) {
                            c.close();
                        }
                    }

                    @Override
                    public void onClose(Connection c, Throwable cause) {
                        if (cause != null || !Arrays.equals(msg, got)) {
                            failures.incrementAndGet();
                            firstFailure.compareAndSet(null, cause != null ? cause : new AssertionError("wrong echo"));
                        }
                        done.countDown();
                    }
                };
                Client.connect(clients.reactor(i % clients.size()), loopback(server.port()), h)
                        .whenComplete((c, t) -> {
                            if (t != null) {
                                failures.incrementAndGet();
                                firstFailure.compareAndSet(null, t);
                                done.countDown();
                            }
                        });
            }
            await(done);
            assertEquals(0, failures.get(), () -> "failures, first: " + firstFailure.get());
        }
        eventually("server connections closed", () -> group.reactors().stream()
                .mapToInt(r -> r.stats().handlesOpen()).sum() == server.listeners());
        eventually("no fd left", () -> FdSnapshot.take().newSince(before).isEmpty());
        assertEquals(conns, server.stats().accepted());
        long delSaved = group.reactors().stream().mapToLong(r -> r.stats().get(Counter.CTL_DEL_SAVED)).sum();
        long del = group.reactors().stream().mapToLong(r -> r.stats().get(Counter.CTL_DEL)).sum();
        if (group.reactor(0).io() == ReactorGroup.Io.URING) {
            // io_uring transport: the sockets never enter epoll at all (no ADD, so no DEL to save)
            long add = group.reactors().stream().mapToLong(r -> r.stats().get(Counter.CTL_ADD)).sum();
            assertEquals(0, add, "on the io_uring transport no socket is added to epoll");
            assertEquals(0, delSaved, "nor counted as a DEL saved");
        } else {
            assertTrue(delSaved >= conns, "every accepted socket closed without EPOLL_CTL_DEL: saved " + delSaved);
        }
        assertEquals(0, del, "no DEL was needed");
    }

    @Test
    void sharedListenerHandsConnectionsToEveryReactor() throws Exception {
        try (Server shared = Server.bind(group, loopback(0), ServerOptions.defaults().withSharedListener(true), Echo::new)) {
            assertEquals(1, shared.listeners());
            long[] before = group.reactors().stream().mapToLong(r -> r.stats().get(Counter.HANDLES_REGISTERED)).toArray();
            for (int i = 0; i < 10; i++) {
                try (Socket s = connect(shared)) {
                    s.getOutputStream().write(new byte[] {1, 2, 3});
                    assertArrayEquals(new byte[] {1, 2, 3}, readExactly(s.getInputStream(), 3));
                }
            }
            for (int r = 0; r < group.size(); r++) {
                assertTrue(group.reactor(r).stats().get(Counter.HANDLES_REGISTERED) - before[r] >= 5,
                        "reactor " + r + " served its share");
            }
        }
    }
}
