package io.quiesce.reactor;

import io.quiesce.net.Client;
import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.Server;
import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.testing.Signals;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Signals as a fault source: {@code tgkill(SIGPIPE)} aimed at reactor threads while they wait for
 * a timer or move bytes. A signal makes a blocked {@code epoll_wait} return EINTR (it is never
 * restarted, {@code signal(7)}); a sampling profiler sends such signals all the time, so a reactor
 * must treat them as normal: resume the wait for what is left of the timeout, lose no event and
 * fail no I/O.
 */
@ExtendWith(NoFdLeaks.class)
class SignalsTest {
    /** At most this many signals, one every {@link #SIGNAL_GAP_MILLIS}: at least 3 s of them. */
    private static final int MAX_SIGNALS = 600;
    private static final long SIGNAL_GAP_MILLIS = 5;
    private static final long TIMER_MILLIS = 300;

    private ReactorGroup group;

    @AfterEach
    void stop() throws Exception {
        if (group != null) {
            group.close(Duration.ofSeconds(20));
        }
    }

    /** The kernel tid of {@code r}'s thread, asked on that thread. */
    static int tidOf(Reactor r) throws Exception {
        var tid = new CompletableFuture<Integer>();
        r.execute(() -> tid.complete(Signals.gettid()));
        return tid.get(20, TimeUnit.SECONDS);
    }

    /**
     * Scenario "EINTR starves timers": a wait restarted with the whole relative timeout after each
     * EINTR never reaches a deadline while signals keep coming faster than the timeout. The
     * signaller goes on until the timer has fired or {@link #MAX_SIGNALS} are sent (at least 3 s,
     * ten times the timer's delay): the timer must fire while signals are still arriving.
     */
    @Test
    void timersFireWhileSignalsArrive() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("sig-"));
        Reactor r = group.reactor(0);
        int tid = tidOf(r);
        long interruptedBefore = r.stats().get(Counter.EPOLL_WAITS_INTERRUPTED);
        var sent = new AtomicInteger();
        var sentWhenFired = new AtomicInteger(-1);
        r.schedule(TIMER_MILLIS, TimeUnit.MILLISECONDS, () -> sentWhenFired.set(sent.get()));
        while (sentWhenFired.get() < 0 && sent.get() < MAX_SIGNALS) {
            assertTrue(Signals.tgkill(tid, Signals.SIGPIPE), "reactor thread " + tid + " is gone");
            sent.incrementAndGet();
            Thread.sleep(SIGNAL_GAP_MILLIS);
        }
        int signalsSent = sent.get();
        ReactorTesting.eventually("the timer fires at all", () -> sentWhenFired.get() >= 0);
        assertTrue(sentWhenFired.get() < MAX_SIGNALS, "the " + TIMER_MILLIS + " ms timer fired only after all "
                + signalsSent + " signals (one per " + SIGNAL_GAP_MILLIS + " ms) had stopped: EINTR restarted the wait "
                + "with the whole timeout; " + r.stats());
        assertTrue(r.stats().get(Counter.EPOLL_WAITS_INTERRUPTED) > interruptedBefore,
                "the signals interrupted epoll_wait (else this test proves nothing): " + r.stats());
    }

    /**
     * Echo over loopback through the net layer, client and server both on reactors that are sent
     * a signal every millisecond or so: every byte comes back in order, no connection fails.
     */
    @Test
    void echoOverLoopbackIsExactWhileSignalsArrive() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("sigio-"));
        int[] tids = {tidOf(group.reactor(0)), tidOf(group.reactor(1))};
        long interruptedBefore = interrupted();
        var failures = new ConcurrentLinkedQueue<Throwable>();
        var stopSignals = new AtomicBoolean();
        var signalsSent = new AtomicInteger();
        Thread signaller = Thread.ofPlatform().name("sigio-signaller").start(() -> {
            // Bounded: 20,000 signals at most, spread over both reactors.
            for (int i = 0; i < 20_000 && !stopSignals.get(); i++) {
                Signals.tgkill(tids[i & 1], Signals.SIGPIPE);
                signalsSent.incrementAndGet();
                if ((i & 1) == 1) {
                    java.util.concurrent.locks.LockSupport.parkNanos(1_000_000);
                }
            }
        });
        ReactorTesting.eventually("some signals reached idle reactors", () -> interrupted() > interruptedBefore);
        try (Server server = Server.bind(group, new InetSocketAddress("127.0.0.1", 0), () -> new Echo(failures))) {
            List<Pump> pumps = new ArrayList<>();
            List<CompletableFuture<Connection>> connects = new ArrayList<>();
            for (int i = 0; i < 4; i++) {
                Pump p = new Pump(0x51_6E_A1L + i, 2 << 20, failures);
                pumps.add(p);
                connects.add(Client.connect(group.reactor(i & 1), new InetSocketAddress("127.0.0.1", server.port()), p));
            }
            for (int i = 0; i < pumps.size(); i++) {
                Connection c = connects.get(i).get(30, TimeUnit.SECONDS);
                assertEquals(pumps.get(i).total, pumps.get(i).done.get(60, TimeUnit.SECONDS),
                        "bytes echoed back intact; " + failures);
                c.closeFuture().get(30, TimeUnit.SECONDS);
            }
        } finally {
            stopSignals.set(true);
            signaller.join();
        }
        assertEquals(List.of(), List.copyOf(failures), "no connection failed, no byte differed");
        assertTrue(signalsSent.get() > 0);
    }

    private long interrupted() {
        long n = 0;
        for (Reactor r : group.reactors()) {
            n += r.stats().get(Counter.EPOLL_WAITS_INTERRUPTED);
        }
        return n;
    }

    /** Echo with back-pressure; any close with a cause is a failure. */
    private record Echo(ConcurrentLinkedQueue<Throwable> failures) implements ConnectionHandler {
        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
            if (!c.isWritable()) {
                c.pauseReading();
            }
        }

        @Override
        public void onWritable(Connection c) {
            c.resumeReading();
        }

        @Override
        public void onClose(Connection c, Throwable cause) {
            if (cause != null) {
                failures.add(new AssertionError("server side closed with a cause", cause));
            }
        }
    }

    /**
     * Client: sends {@code total} seeded pseudo-random bytes as fast as the watermarks allow and
     * checks every byte that comes back against the same sequence; closes when all came back.
     */
    private static final class Pump implements ConnectionHandler {
        private static final int BLOCK = 16 * 1024 + 7; // odd: not aligned with any buffer
        final long total;
        final CompletableFuture<Long> done = new CompletableFuture<>();
        private final ConcurrentLinkedQueue<Throwable> failures;
        private final SplittableRandom out;
        private final SplittableRandom in;
        private final byte[] block = new byte[BLOCK];
        private long sent;
        private long received;

        Pump(long seed, long total, ConcurrentLinkedQueue<Throwable> failures) {
            this.total = total;
            this.failures = failures;
            this.out = new SplittableRandom(seed);
            this.in = new SplittableRandom(seed);
        }

        @Override
        public void onOpen(Connection c) {
            pump(c);
        }

        @Override
        public void onWritable(Connection c) {
            pump(c);
        }

        private void pump(Connection c) {
            while (sent < total && c.isWritable()) {
                int n = (int) Math.min(BLOCK, total - sent);
                for (int i = 0; i < n; i++) {
                    block[i] = (byte) out.nextInt();
                }
                if (!c.write(block, 0, n)) {
                    failures.add(new AssertionError("write refused on an open connection after " + sent + " bytes"));
                    return;
                }
                sent += n;
            }
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            for (long i = 0; i < data.byteSize(); i++) {
                byte expected = (byte) in.nextInt();
                if (data.get(ValueLayout.JAVA_BYTE, i) != expected) {
                    failures.add(new AssertionError("byte " + (received + i) + " differs"));
                    c.abort();
                    done.complete(received + i);
                    return;
                }
            }
            received += data.byteSize();
            if (received == total) {
                done.complete(received);
                c.close();
            }
        }

        @Override
        public void onClose(Connection c, Throwable cause) {
            if (cause != null) {
                failures.add(new AssertionError("client closed with a cause", cause));
            }
            done.complete(received);
        }
    }
}
