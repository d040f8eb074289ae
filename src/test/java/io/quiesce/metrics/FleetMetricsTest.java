package io.quiesce.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.simple.SimpleMeterRegistry;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.net.Client;
import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.Server;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.InetSocketAddress;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.*;

/** Metrics for a fleet: named groups with extra tags, connection origins, an idle reactor read as idle. */
@ExtendWith(NoFdLeaks.class)
class FleetMetricsTest {
    private static final long WAIT_SECONDS = 30;

    private static ReactorGroup start(int threads, String prefix) throws Exception {
        return ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(threads).withThreadNamePrefix(prefix));
    }

    private static double counter(MeterRegistry reg, String name, String... tags) {
        FunctionCounter c = reg.find(name).tags(tags).functionCounter();
        assertNotNull(c, () -> "no " + name + " " + java.util.Arrays.toString(tags));
        return c.count();
    }

    private static double gauge(MeterRegistry reg, String name, String... tags) {
        Gauge g = reg.find(name).tags(tags).gauge();
        assertNotNull(g, () -> "no " + name + " " + java.util.Arrays.toString(tags));
        return g.value();
    }

    private static void eventually(String what, java.util.function.BooleanSupplier condition) throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() - deadline < 0, () -> "never happened: " + what);
            Thread.sleep(5);
        }
    }

    private static void runTasks(Reactor r, int n) throws Exception {
        var done = new CountDownLatch(n);
        for (int i = 0; i < n; i++) {
            r.execute(done::countDown);
        }
        assertTrue(done.await(WAIT_SECONDS, TimeUnit.SECONDS));
    }

    @Test
    void twoGroupsShareOneRegistryEachWithItsOwnMeters() throws Exception {
        try (var a = start(1, "fleet-a-"); var b = start(1, "fleet-b-")) {
            var simple = new SimpleMeterRegistry();
            var prometheus = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            for (MeterRegistry reg : new MeterRegistry[] {simple, prometheus}) {
                QuiesceMetrics.bind(a, "frontend", Tags.of("service", "api"), reg);
                QuiesceMetrics.bind(b, "backend", Tags.of("service", "api"), reg);
            }
            double aTasks = counter(simple, "quiesce.tasks.run", "group", "frontend", "reactor", "0", "service", "api");
            double bTasks = counter(simple, "quiesce.tasks.run", "group", "backend", "reactor", "0", "service", "api");
            runTasks(b.reactor(0), 5);
            // Only b ran the tasks; each group's meter reads its own reactor.
            assertTrue(counter(simple, "quiesce.tasks.run", "group", "backend") >= bTasks + 5);
            assertEquals(aTasks, counter(simple, "quiesce.tasks.run", "group", "frontend"));
            assertTrue(counter(prometheus, "quiesce.tasks.run", "group", "backend") >= bTasks + 5);

            String text = prometheus.scrape();
            for (String g : new String[] {"frontend", "backend"}) {
                assertTrue(text.matches("(?s).*quiesce_tasks_run_total\\{[^}]*group=\"" + g + "\"[^}]*reactor=\"0\""
                        + "[^}]*service=\"api\"[^}]*} .*"), () -> "no series for group " + g + " in\n" + text);
            }
            prometheus.close();
            simple.close();
        }
    }

    @Test
    void aSecondGroupUnderTheSameNameIsRefusedNotDropped() throws Exception {
        try (var a = start(1, "fleet-c-"); var b = start(1, "fleet-d-")) {
            var reg = new SimpleMeterRegistry();
            QuiesceMetrics.bind(a, reg);
            var e = assertThrows(IllegalStateException.class, () -> QuiesceMetrics.bind(b, reg));
            assertTrue(e.getMessage().contains("'default'"), e.getMessage());
            // Same name, other extra tags: a different identity, accepted.
            QuiesceMetrics.bind(b, QuiesceMetrics.DEFAULT_NAME, Tags.of("zone", "b"), reg);
            assertNotNull(reg.find("quiesce.epoll.waits").tags("zone", "b").functionCounter());
            assertThrows(IllegalArgumentException.class, () -> new QuiesceMetrics(a, "x", Tags.of("reactor", "9")));
            assertThrows(IllegalArgumentException.class, () -> new QuiesceMetrics(a, " ", Tags.empty()));
            reg.close();
        }
    }

    @Test
    void acceptedAndOutgoingConnectionsAreCountedApart() throws Exception {
        try (var group = start(1, "fleet-e-")) {
            var reg = new SimpleMeterRegistry();
            QuiesceMetrics.bind(group, "g", Tags.empty(), reg);
            Server server = Server.bind(group, new InetSocketAddress("127.0.0.1", 0), () -> (c, data) -> {});
            var clientClosed = new CountDownLatch(1);
            Connection client = Client.connect(group.reactor(0), new InetSocketAddress("127.0.0.1", server.port()),
                    new ConnectionHandler() {
                        @Override
                        public void onRead(Connection c, java.lang.foreign.MemorySegment data) {}

                        @Override
                        public void onClose(Connection c, Throwable cause) {
                            clientClosed.countDown();
                        }
                    }).get(WAIT_SECONDS, TimeUnit.SECONDS);
            eventually("the server accepted", () -> counter(reg, "quiesce.connections.opened", "origin", "accepted") == 1);
            assertEquals(1, counter(reg, "quiesce.connections.opened", "origin", "outgoing"));
            assertEquals(1, gauge(reg, "quiesce.connections.open", "origin", "accepted"));
            assertEquals(1, gauge(reg, "quiesce.connections.open", "origin", "outgoing"));

            client.close();
            assertTrue(clientClosed.await(WAIT_SECONDS, TimeUnit.SECONDS));
            eventually("the accepted side closed (peer FIN)",
                    () -> counter(reg, "quiesce.connections.closed", "origin", "accepted") == 1);
            assertEquals(1, counter(reg, "quiesce.connections.closed", "origin", "outgoing"));
            assertEquals(0, gauge(reg, "quiesce.connections.open", "origin", "accepted"));
            assertEquals(0, gauge(reg, "quiesce.connections.open", "origin", "outgoing"));
            assertEquals(1, counter(reg, "quiesce.accepts"));
            server.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
            reg.close();
        }
    }

    /**
     * A parked reactor's wait is credited while it lasts: over a window in which the reactor does
     * nothing, busy stays put and wait grows, so busy / (busy + wait) reads near 0. (When wait was
     * credited only as {@code epoll_wait} returned, both stood still: 0 / 0.)
     */
    @Test
    void anIdleReactorReadsIdle() throws Exception {
        try (var group = start(1, "fleet-f-")) {
            var reg = new SimpleMeterRegistry();
            QuiesceMetrics.bind(group, "idle", Tags.empty(), reg);
            runTasks(group.reactor(0), 1); // it has started and parked again
            DoubleSupplier busy = () -> counter(reg, "quiesce.loop.busy", "group", "idle");
            DoubleSupplier wait = () -> counter(reg, "quiesce.loop.wait", "group", "idle");
            DoubleSupplier waits = () -> counter(reg, "quiesce.epoll.waits", "group", "idle");
            // Baselines only once the reactor sits in its wait: the busy stretch after the task is
            // credited when the reactor parks, which may be after runTasks returned.
            double parked = wait.getAsDouble();
            eventually("the reactor is waiting", () -> wait.getAsDouble() - parked >= 0.001);
            double busy0 = busy.getAsDouble();
            double wait0 = wait.getAsDouble();
            double waits0 = waits.getAsDouble();
            // 20 ms of wait as the counter itself reads it, not as this test's clock does.
            eventually("the idle reactor's wait time grows", () -> wait.getAsDouble() - wait0 >= 0.020);
            double dBusy = busy.getAsDouble() - busy0;
            double dWait = wait.getAsDouble() - wait0;
            double utilisation = dBusy / (dBusy + dWait);
            if (waits.getAsDouble() == waits0) {
                assertEquals(0, dBusy, "no epoll_wait returned, so no busy time was credited");
            }
            assertTrue(utilisation < 0.05, "an idle reactor's utilisation: busy " + dBusy + " s, wait " + dWait + " s");
        }
    }

    /** Read while the reactor keeps waking and parking, the wait counter never goes back (a reset to Prometheus). */
    @Test
    void theWaitCounterNeverGoesBackWhileTheReactorWakesAndParks() throws Exception {
        try (var group = start(1, "fleet-g-")) {
            Reactor r = group.reactor(0);
            ReactorStats stats = r.stats();
            var stop = new AtomicBoolean();
            var waker = Thread.ofPlatform().name("waker").start(() -> {
                for (int i = 0; i < 200_000 && !stop.get(); i++) {
                    r.execute(() -> {});
                    if ((i & 63) == 0) {
                        Thread.onSpinWait();
                    }
                }
            });
            long last = stats.waitNanos();
            long wakesBefore = stats.get(ReactorStats.Counter.EPOLL_WAITS);
            for (int i = 0; i < 200_000; i++) {
                long now = stats.waitNanos();
                assertTrue(now >= last, "waitNanos went back from " + last + " to " + now);
                last = now;
            }
            stop.set(true);
            waker.join(TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            assertTrue(stats.get(ReactorStats.Counter.EPOLL_WAITS) > wakesBefore, "the reactor woke while we read");
            assertTrue(stats.waitNanos() >= stats.get(ReactorStats.Counter.WAIT_NANOS));
        }
    }
}
