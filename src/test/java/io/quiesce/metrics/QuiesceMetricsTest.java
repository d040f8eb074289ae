package io.quiesce.metrics;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

@ExtendWith(NoFdLeaks.class)
class QuiesceMetricsTest {
    private ReactorGroup group;
    private PrometheusMeterRegistry registry;

    @BeforeEach
    void setUp() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2));
        registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        QuiesceMetrics.bind(group, registry);
    }

    @AfterEach
    void tearDown() {
        group.close();
        registry.close();
    }

    /** The sum of the sample lines {@code name{...} value} whose labels include every one given. */
    private double sample(String name, String... labels) {
        Matcher m = Pattern.compile("^" + Pattern.quote(name) + "\\{([^}]*)\\} (\\S+)$", Pattern.MULTILINE)
                .matcher(registry.scrape());
        double sum = 0;
        boolean found = false;
        while (m.find()) {
            if (java.util.Arrays.stream(labels).allMatch(m.group(1)::contains)) {
                sum += Double.parseDouble(m.group(2));
                found = true;
            }
        }
        assertTrue(found, () -> "no sample " + name + java.util.Arrays.toString(labels) + " in the scrape");
        return sum;
    }

    @Test
    void countersMoveAsTheEventsTheyCountHappen() throws Exception {
        Reactor r = group.reactor(0);
        String r0 = "reactor=\"0\"";
        double events = sample("quiesce_events_dispatched_total", r0);
        double closes = sample("quiesce_closes_total", r0);
        double addSaved = sample("quiesce_epoll_ctl_total", "op=\"add\"", "outcome=\"saved\"", r0);
        double adds = sample("quiesce_epoll_ctl_total", "op=\"add\"", "outcome=\"issued\"", r0);

        // A real event and a real close.
        var seen = new CountDownLatch(1);
        Handle h = r.register(Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK), Interest.READ, (x, ready) -> seen.countDown());
        awaitIteration(r);
        Syscalls.current().eventfdWrite(h.fd(), 1);
        assertTrue(seen.await(20, TimeUnit.SECONDS));
        h.close(Duration.ofSeconds(10));
        assertEquals(events + 1, sample("quiesce_events_dispatched_total", r0));
        assertEquals(closes + 1, sample("quiesce_closes_total", r0));
        assertEquals(adds + 1, sample("quiesce_epoll_ctl_total", "op=\"add\"", "outcome=\"issued\"", r0));
        assertEquals(closes + 1, sample("quiesce_close_latency_seconds_count", r0));
        assertEquals(closes + 1, sample("quiesce_close_latency_seconds_bucket", "le=\"+Inf\"", r0));

        // A real coalesced ADD+DEL: registered and closed in one iteration, no syscall.
        var done = new CountDownLatch(1);
        r.execute(() -> {
            r.register(Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK), Interest.READ, (x, ready) -> {}).close();
            r.execute(done::countDown);
        });
        assertTrue(done.await(20, TimeUnit.SECONDS));
        assertEquals(addSaved + 1, sample("quiesce_epoll_ctl_total", "op=\"add\"", "outcome=\"saved\"", r0));
        assertEquals(adds + 1, sample("quiesce_epoll_ctl_total", "op=\"add\"", "outcome=\"issued\"", r0));
        assertTrue(sample("quiesce_loop_wait_seconds_total", r0) > 0);
        assertTrue(sample("quiesce_wakeups_total", "kind=\"sent\"", r0) > 0);
    }

    private static void awaitIteration(Reactor r) throws InterruptedException {
        var done = new CountDownLatch(1);
        r.execute(() -> r.execute(done::countDown));
        assertTrue(done.await(20, TimeUnit.SECONDS));
    }

    @Test
    void everyMetricTheDashboardQueriesIsExported() throws Exception {
        String dashboard = Files.readString(Path.of("dashboards/quiesce.json"));
        Set<String> queried = new TreeSet<>();
        Matcher m = Pattern.compile("quiesce_[a-z_]+").matcher(dashboard);
        while (m.find()) {
            queried.add(m.group());
        }
        assertTrue(queried.size() >= 10, "the dashboard queries Quiesce metrics: " + queried);
        Set<String> exported = new TreeSet<>();
        Matcher s = Pattern.compile("^(quiesce_[a-z_]+)[{ ]", Pattern.MULTILINE).matcher(registry.scrape());
        while (s.find()) {
            exported.add(s.group(1));
        }
        queried.removeAll(exported);
        assertEquals(Set.of(), queried, "queried by dashboards/quiesce.json but not exported");
    }

    @Test
    void theScrapePassesPromtool() throws Exception {
        Path promtool = Path.of("/usr/bin/promtool");
        assertTrue(Files.isExecutable(promtool),
                "promtool is needed (Debian package 'prometheus'; .ci/run installs it): not found at " + promtool);
        Path report = Files.createTempFile("promtool", ".txt");
        Process p = new ProcessBuilder(promtool.toString(), "check", "metrics").redirectErrorStream(true)
                .redirectOutput(report.toFile()).start();
        try (var in = p.getOutputStream()) {
            in.write(registry.scrape().getBytes(StandardCharsets.UTF_8));
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = Files.readString(report);
        Files.delete(report);
        assertEquals(0, p.exitValue(), "promtool check metrics:\n" + out);
    }
}
