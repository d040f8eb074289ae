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

import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/** {@code Date} is an IMF-fixdate (RFC 9110 §5.6.7) and is on every response the example sends. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class HttpDateTest {
    /** IMF-fixdate: {@code Tue, 01 Dec 2026 21:05:09 GMT}, fixed width, two-digit day. */
    private static final Pattern IMF_FIXDATE = Pattern.compile(
            "(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \\d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \\d{4} "
                    + "\\d{2}:\\d{2}:\\d{2} GMT");
    private static final DateTimeFormatter REFERENCE =
            DateTimeFormatter.ofPattern("EEE, dd MMM yyyy HH:mm:ss 'GMT'", Locale.US).withZone(ZoneOffset.UTC);
    private static final Pattern DATE_LINE = Pattern.compile("(?m)^Date: ([^\r\n]*)\r\n");

    private ReactorGroup group;
    private PrometheusMeterRegistry registry;
    private Server server;

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("date-test-"));
        registry = HttpServer.metricsRegistry(group);
        server = HttpServer.start(group, new InetSocketAddress("127.0.0.1", 0),
                new HttpServer.Timeouts(Duration.ofMillis(300), Duration.ofSeconds(20), Duration.ofSeconds(20)),
                registry::scrape);
    }

    @AfterEach
    void stop() throws Exception {
        server.closeAsync().get(30, TimeUnit.SECONDS);
        group.close(Duration.ofSeconds(30));
        registry.close();
    }

    @Test
    void theDateIsAnImfFixdateWithATwoDigitDay() {
        long s = ZonedDateTime.of(2026, 12, 1, 21, 5, 9, 0, ZoneOffset.UTC).toEpochSecond();
        assertEquals("Tue, 01 Dec 2026 21:05:09 GMT", HttpResponses.imfFixdate(s));
        assertEquals("Thu, 01 Jan 1970 00:00:00 GMT", HttpResponses.imfFixdate(0));
        // Every day from 1970 to 2100 at a random second of it, against java.time's own formatting.
        var random = new SplittableRandom(42);
        for (long day = 0; day < 47_847; day++) {
            long t = day * 86_400 + random.nextInt(86_400);
            String ours = HttpResponses.imfFixdate(t);
            assertEquals(REFERENCE.format(Instant.ofEpochSecond(t)), ours);
            assertTrue(IMF_FIXDATE.matcher(ours).matches(), ours);
        }
    }

    private Socket connect() throws IOException {
        Socket s = new Socket("127.0.0.1", server.port());
        s.setSoTimeout(30_000);
        return s;
    }

    /** Sends {@code request}, reads everything until the server closes or {@code responses} heads came. */
    private String exchange(String request, int responses) throws IOException {
        try (Socket s = connect()) {
            s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
            var got = new StringBuilder();
            var in = s.getInputStream();
            for (int i = 0; i < responses; i++) {
                var r = HttpServerTest.read(in);
                if (r == null) {
                    break;
                }
                got.append(r.headers()).append('\n');
            }
            return got.toString();
        }
    }

    @Test
    void everyResponseCarriesOneDate() throws Exception {
        record Case(String name, String request, int status) {}
        List<Case> cases = List.of(
                new Case("GET 200", "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n", 200),
                new Case("GET / 1.0", "GET / HTTP/1.0\r\n\r\n", 200),
                new Case("1.0 keep-alive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", 200),
                new Case("close", "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200),
                new Case("HEAD", "HEAD /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200),
                new Case("metrics", "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", 200),
                new Case("404", "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n", 404),
                new Case("404 close", "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 404),
                new Case("405", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n", 405),
                new Case("400", "GARBAGE\r\n\r\n", 400),
                new Case("400 no host", "GET / HTTP/1.1\r\n\r\n", 400),
                new Case("431", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(HttpServer.MAX_HEADER_BYTES) + "\r\n\r\n", 431),
                new Case("408", "GET / HTTP/1.1\r\nHost: x\r\n", 408));
        List<String> bad = new ArrayList<>();
        for (Case c : cases) {
            long before = System.currentTimeMillis() / 1000;
            String head = exchange(c.request(), 1);
            long after = System.currentTimeMillis() / 1000;
            if (!head.startsWith("HTTP/1.1 " + c.status() + " ")) {
                bad.add(c.name() + ": expected " + c.status() + ", got " + head);
                continue;
            }
            Matcher m = DATE_LINE.matcher(head);
            List<String> dates = new ArrayList<>();
            while (m.find()) {
                dates.add(m.group(1));
            }
            if (dates.size() != 1) {
                bad.add(c.name() + ": " + dates.size() + " Date headers in\n" + head);
                continue;
            }
            String date = dates.getFirst();
            if (!IMF_FIXDATE.matcher(date).matches()) {
                bad.add(c.name() + ": not an IMF-fixdate: " + date);
                continue;
            }
            long t = ZonedDateTime.parse(date, REFERENCE).toEpochSecond();
            if (t < before || t > after) { // the server's clock, not its speed: the second it answered in
                bad.add(c.name() + ": Date " + date + " is not between " + before + " and " + after);
            }
        }
        assertEquals(List.of(), bad);
    }

    @Test
    void pipelinedResponsesEachCarryADate() throws Exception {
        String one = "GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\nGET /nope HTTP/1.1\r\nHost: x\r\n\r\n";
        String all = exchange(one.repeat(8) + "HEAD / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 16);
        Matcher m = DATE_LINE.matcher(all);
        int n = 0;
        while (m.find()) {
            assertTrue(IMF_FIXDATE.matcher(m.group(1)).matches(), m.group(1));
            n++;
        }
        assertEquals(16, n, all);
    }
}
