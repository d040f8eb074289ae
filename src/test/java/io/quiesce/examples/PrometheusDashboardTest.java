package io.quiesce.examples;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.net.Server;
import io.quiesce.net.WarmJdkSockets;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.Dashboard;
import io.quiesce.testing.Json;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.File;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.URLEncoder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Every query of {@code dashboards/quiesce.json} run by a real Prometheus (Debian's package)
 * scraping the HTTP example's {@code /metrics} under a little load: each must return data. Bounded
 * by deadlines (nothing here is timed), and Prometheus is stopped however the test ends.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class PrometheusDashboardTest {
    private static final String JOB = "quiesce-http";
    private static final long DEADLINE_SECONDS = 90;
    private static final Pattern LABEL_VALUES = Pattern.compile("label_values\\((.*),\\s*([a-zA-Z_]+)\\)");

    /** The Prometheus binary: {@code $PROMETHEUS}, else the first {@code prometheus} on PATH, else /usr/bin. */
    static Path prometheusBinary() {
        String env = System.getenv("PROMETHEUS");
        if (env != null && !env.isBlank()) {
            return Path.of(env);
        }
        String path = System.getenv().getOrDefault("PATH", "");
        return Stream.concat(Stream.of(path.split(File.pathSeparator)), Stream.of("/usr/bin"))
                .filter(d -> !d.isEmpty()).map(d -> Path.of(d, "prometheus"))
                .filter(Files::isExecutable).findFirst().orElse(Path.of("/usr/bin/prometheus"));
    }

    private static int freePort() throws IOException {
        try (var s = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress())) {
            return s.getLocalPort();
        }
    }

    @Test
    void everyDashboardQueryReturnsDataFromARealPrometheus() throws Exception {
        Path binary = prometheusBinary();
        assertTrue(Files.isExecutable(binary), "install prometheus (Debian: apt-get install prometheus; "
                + ".ci/run does it) or point $PROMETHEUS at the binary: not found at " + binary);
        Dashboard dashboard = Dashboard.load();

        ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("prom-test-"));
        PrometheusMeterRegistry registry = HttpServer.metricsRegistry(group);
        Server server = HttpServer.start(group, new InetSocketAddress("127.0.0.1", 0), HttpServer.Timeouts.defaults(),
                registry::scrape);
        Path dir = Files.createTempDirectory("quiesce-prometheus");
        Process prometheus = null;
        var stopLoad = new AtomicBoolean();
        Thread load = null;
        try {
            String target = "127.0.0.1:" + server.port();
            Path config = dir.resolve("prometheus.yml");
            Files.writeString(config, """
                    global:
                      scrape_interval: 1s
                      evaluation_interval: 1s
                    scrape_configs:
                      - job_name: %s
                        scrape_interval: 1s
                        scrape_timeout: 900ms
                        static_configs:
                          - targets: ['%s']
                    """.formatted(JOB, target));
            Path log = dir.resolve("prometheus.log");
            Api api = null;
            for (int attempt = 1; api == null; attempt++) {
                int webPort = freePort(); // free a moment ago: another process may take it first, then retry
                prometheus = new ProcessBuilder(binary.toString(), "--config.file=" + config,
                        "--storage.tsdb.path=" + dir.resolve("data"), "--web.listen-address=127.0.0.1:" + webPort,
                        "--storage.tsdb.retention.time=1h", "--log.level=warn")
                        .redirectErrorStream(true).redirectOutput(log.toFile())
                        .redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null"))).start();
                var candidate = new Api(webPort, prometheus, log);
                if (candidate.awaitReady()) {
                    api = candidate;
                } else {
                    String tail = candidate.logTail();
                    assertTrue(attempt < 3 && tail.contains("address already in use"),
                            () -> "prometheus exited with " + candidate.process().exitValue() + ":\n" + tail);
                }
            }

            load = Thread.ofPlatform().name("prom-test-load").start(() -> load(server.port(), stopLoad));

            // The dashboard's variables as Grafana would fill them in for this one instance.
            Map<String, String> vars = new LinkedHashMap<>();
            vars.put("job", JOB);
            vars.put("instance", target.replace(".", "\\\\.")); // Grafana regex-escapes a value used with =~
            vars.put("group", "http");
            vars.put("__rate_interval", "5s");

            List<String> pending = new ArrayList<>();
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_SECONDS);
            while (true) {
                pending.clear();
                for (var v : dashboard.variables) {
                    if (v.type().equals("query")) {
                        String why = api.labelValuesMissing(Dashboard.substitute(v.query(), vars), v.name(),
                                v.name().equals("instance") ? target : vars.get(v.name()));
                        if (why != null) {
                            pending.add("variable $" + v.name() + ": " + why);
                        }
                    }
                }
                for (var q : dashboard.queries) {
                    String expr = Dashboard.substitute(q.expr(), vars);
                    assertFalse(expr.contains("$"), () -> "a variable the test does not fill in: " + expr);
                    String why = api.queryHasNoData(expr);
                    if (why != null) {
                        pending.add(q.panel() + "/" + q.refId() + ": " + why + "\n    " + expr);
                    }
                }
                if (pending.isEmpty()) {
                    break;
                }
                if (System.nanoTime() - deadline > 0) {
                    fail("after " + DEADLINE_SECONDS + " s some dashboard queries still return no data:\n"
                            + String.join("\n", pending) + "\nprometheus log:\n" + api.logTail());
                }
                Thread.sleep(500);
            }
        } finally {
            stopLoad.set(true);
            if (load != null) {
                load.join(TimeUnit.SECONDS.toMillis(30));
            }
            if (prometheus != null) {
                prometheus.destroy(); // SIGTERM: a clean shutdown of its TSDB
                if (!prometheus.waitFor(20, TimeUnit.SECONDS)) {
                    prometheus.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
                }
            }
            server.closeAsync().get(30, TimeUnit.SECONDS);
            group.close(Duration.ofSeconds(30));
            registry.close();
            try (var files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
            }
        }
    }

    /**
     * A little traffic: keep-alive requests on one connection and a new connection now and then
     * (accepts, closes and close latencies for the panels that need them). Bounded in count and
     * time; errors end it quietly (the assertions are about the queries).
     */
    private static void load(int port, AtomicBoolean stop) {
        byte[] request = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".getBytes(StandardCharsets.US_ASCII);
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_SECONDS + 30);
        for (int round = 0; round < 100_000 && !stop.get() && System.nanoTime() - end < 0; round++) {
            try (Socket s = new Socket("127.0.0.1", port)) {
                s.setSoTimeout(10_000);
                for (int i = 0; i < 20; i++) {
                    s.getOutputStream().write(request);
                    if (HttpServerTest.read(s.getInputStream()) == null) {
                        break;
                    }
                }
                Thread.sleep(20);
            } catch (IOException e) {
                return;
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    /** Prometheus' HTTP API over plain HTTP/1.0 sockets (no client library, no pooled fds). */
    private record Api(int port, Process process, Path log) {
        /** {@return true once Prometheus answers ready, false if it exited first} */
        boolean awaitReady() throws Exception {
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(DEADLINE_SECONDS);
            while (true) {
                if (!process.isAlive()) {
                    return false;
                }
                try {
                    String status = get("/-/ready");
                    if (status.startsWith("HTTP/1.0 200") || status.startsWith("HTTP/1.1 200")) {
                        return true;
                    }
                } catch (IOException notYet) {
                    // not listening yet
                }
                assertTrue(System.nanoTime() - deadline < 0, () -> "prometheus never became ready:\n" + logTail());
                Thread.sleep(100);
            }
        }

        /** {@return why {@code expr} (an instant query) has no data, or null if it has a finite sample} */
        String queryHasNoData(String expr) throws IOException {
            Map<String, Object> data = data(get("/api/v1/query?query=" + URLEncoder.encode(expr, StandardCharsets.UTF_8)));
            if (data == null) {
                return "the query failed";
            }
            List<Object> result = Json.array(data.get("result"));
            if (result.isEmpty()) {
                return "empty result";
            }
            for (Object r : result) {
                String v = (String) Json.array(Json.object(r).get("value")).get(1);
                if (!v.equals("NaN") && !v.contains("Inf")) {
                    return null;
                }
            }
            return "only NaN/Inf samples: " + result;
        }

        /** {@return why {@code label_values(selector, label)} lacks {@code expected}, or null} */
        String labelValuesMissing(String query, String label, String expected) throws IOException {
            Matcher m = LABEL_VALUES.matcher(query);
            assertTrue(m.matches(), () -> "not label_values(selector, label): " + query);
            assertEquals(label, m.group(2), query);
            String body = get("/api/v1/label/" + m.group(2) + "/values?match[]="
                    + URLEncoder.encode(m.group(1).trim(), StandardCharsets.UTF_8));
            Object values = dataRaw(body);
            if (values == null) {
                return "the query failed: " + query;
            }
            return Json.array(values).contains(expected) ? null : expected + " not in " + values + " for " + query;
        }

        private static Map<String, Object> data(String response) {
            Object d = dataRaw(response);
            return d == null ? null : Json.object(d);
        }

        private static Object dataRaw(String response) {
            int body = response.indexOf("\r\n\r\n");
            assertTrue(body > 0, () -> "not an HTTP response: " + response);
            var json = Json.object(Json.parse(response.substring(body + 4)));
            assertEquals("success", json.get("status"), () -> "Prometheus API said " + json);
            return json.get("data");
        }

        private String get(String pathAndQuery) throws IOException {
            try (Socket s = new Socket("127.0.0.1", port)) {
                s.setSoTimeout(30_000);
                s.getOutputStream().write(("GET " + pathAndQuery + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
                        .getBytes(StandardCharsets.US_ASCII));
                return new String(s.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            }
        }

        String logTail() {
            try {
                List<String> lines = Files.readAllLines(log);
                return String.join("\n", lines.subList(Math.max(0, lines.size() - 30), lines.size()));
            } catch (IOException e) {
                return "(no log: " + e + ")";
            }
        }
    }
}
