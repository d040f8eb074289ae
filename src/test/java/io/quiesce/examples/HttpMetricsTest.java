package io.quiesce.examples;

import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.net.Server;
import io.quiesce.net.WarmJdkSockets;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** {@code GET /metrics} on the HTTP example: real traffic moves the counters; promtool accepts the text. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class HttpMetricsTest {
    private ReactorGroup group;
    private PrometheusMeterRegistry registry;
    private Server server;

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("metrics-test-"));
        registry = HttpServer.metricsRegistry(group);
        server = HttpServer.start(group, new InetSocketAddress("127.0.0.1", 0), HttpServer.Timeouts.defaults(),
                registry::scrape);
    }

    @AfterEach
    void stop() throws Exception {
        server.closeAsync().get(30, TimeUnit.SECONDS);
        group.close(Duration.ofSeconds(30));
        registry.close();
    }

    private HttpServerTest.Response get(String path) throws Exception {
        try (Socket s = new Socket("127.0.0.1", server.port())) {
            s.setSoTimeout(30_000);
            s.getOutputStream().write(("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
            return HttpServerTest.read(s.getInputStream());
        }
    }

    private static double sum(String text, String name, String label) {
        Matcher m = Pattern.compile("^" + Pattern.quote(name) + "\\{([^}]*)\\} (\\S+)$", Pattern.MULTILINE).matcher(text);
        double total = 0;
        boolean found = false;
        while (m.find()) {
            if (m.group(1).contains(label)) {
                total += Double.parseDouble(m.group(2));
                found = true;
            }
        }
        assertTrue(found, "no " + name + "{" + label + "}");
        return total;
    }

    @Test
    void metricsMoveWithRealTrafficAndPassPromtool() throws Exception {
        String before = get("/metrics").body();
        for (int i = 0; i < 5; i++) {
            assertEquals("Hello, World!", get("/plaintext").body());
        }
        var response = get("/metrics");
        assertEquals(200, response.status());
        assertTrue(response.headers().contains("Content-Type: text/plain; version=0.0.4"), response.headers());
        String after = response.body();

        assertTrue(sum(after, "quiesce_accepts_total", "reactor") >= sum(before, "quiesce_accepts_total", "reactor") + 5);
        assertTrue(sum(after, "quiesce_io_bytes_total", "direction=\"read\"")
                > sum(before, "quiesce_io_bytes_total", "direction=\"read\"") + 5 * 30);
        assertTrue(sum(after, "quiesce_io_bytes_total", "direction=\"written\"")
                > sum(before, "quiesce_io_bytes_total", "direction=\"written\"") + 5 * 13);
        assertTrue(sum(after, "quiesce_connections_opened_total", "reactor")
                >= sum(before, "quiesce_connections_opened_total", "reactor") + 5);
        assertTrue(after.contains("jvm_memory_used_bytes"), "JVM meters");
        assertTrue(after.contains("process_cpu_usage"), "process meters");

        Path promtool = Path.of("/usr/bin/promtool");
        assertTrue(Files.isExecutable(promtool), "promtool is needed (Debian package 'prometheus'; .ci/run installs it)");
        Path report = Files.createTempFile("promtool", ".txt");
        Process p = new ProcessBuilder(promtool.toString(), "check", "metrics").redirectErrorStream(true)
                .redirectOutput(report.toFile()).start();
        try (var in = p.getOutputStream()) {
            in.write(after.getBytes(StandardCharsets.UTF_8));
        }
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String out = Files.readString(report);
        Files.delete(report);
        assertEquals(0, p.exitValue(), "promtool check metrics on /metrics:\n" + out);
    }
}
