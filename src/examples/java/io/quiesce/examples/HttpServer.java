package io.quiesce.examples;

import io.micrometer.core.instrument.Meter;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.micrometer.core.instrument.config.MeterFilter;
import io.micrometer.core.instrument.binder.jvm.ClassLoaderMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmGcMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmMemoryMetrics;
import io.micrometer.core.instrument.binder.jvm.JvmThreadMetrics;
import io.micrometer.core.instrument.binder.system.FileDescriptorMetrics;
import io.micrometer.core.instrument.binder.system.ProcessorMetrics;
import io.micrometer.core.instrument.binder.system.UptimeMetrics;
import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.metrics.QuiesceMetrics;
import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.ConnectionOptions;
import io.quiesce.net.Server;
import io.quiesce.net.ServerOptions;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ScheduledTask;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * {@code make run}: a small HTTP/1.1 server on 127.0.0.1:8080 ({@code --port P --threads N}).
 *
 * <p>{@code GET /} and {@code GET /plaintext} answer {@code Hello, World!} as text/plain
 * ({@code HEAD} too); {@code GET /metrics} serves the Prometheus text format (Quiesce's reactors,
 * JVM and process meters); other methods on them get 405, other paths 404. Keep-alive and pipelining
 * (responses in request order); a malformed request line or header gets 400, a header section over
 * 8 KiB gets 431, and each closes the connection. A request whose header section does not arrive
 * within the header timeout gets 408 (slow-loris defence); an idle keep-alive connection is closed
 * after the idle timeout; a client that does not read its responses is paused, then cut off by the
 * write timeout. Prints its URL once and nothing per request; Ctrl-C or SIGTERM stops it cleanly.
 */
public final class HttpServer {
    /** Largest request line plus headers accepted. */
    public static final int MAX_HEADER_BYTES = 8 * 1024;
    /** Largest request body skipped (a GET may carry one); a larger one closes the connection. */
    static final long MAX_BODY_BYTES = 1 << 20;

    /**
     * The server's timeouts.
     *
     * @param header how long a request's header section may take to arrive, once it has begun
     * @param idle how long a keep-alive connection may stay silent
     * @param write how long queued responses may make no progress
     */
    public record Timeouts(Duration header, Duration idle, Duration write) {
        /** {@return 10 s for headers, 60 s idle, 30 s for writes} */
        public static Timeouts defaults() {
            return new Timeouts(Duration.ofSeconds(10), Duration.ofSeconds(60), Duration.ofSeconds(30));
        }
    }

    private HttpServer() {}

    public static void main(String[] argv) throws Exception {
        Args args = Args.parse(argv, 8080);
        ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(args.threads())
                .withThreadNamePrefix("http-"));
        PrometheusMeterRegistry registry = metricsRegistry(group);
        Server server = start(group, new InetSocketAddress("127.0.0.1", args.port()), Timeouts.defaults(),
                registry::scrape);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            group.close();
            registry.close();
        }, "http-shutdown"));
        System.out.println("listening on http://127.0.0.1:" + server.port() + "/ (" + group.size() + " reactors)");
        System.out.flush();
    }

    /**
     * {@return a Prometheus registry with Quiesce's reactor meters and the JVM and process meters}
     * @param group the reactors to export
     */
    public static PrometheusMeterRegistry metricsRegistry(ReactorGroup group) {
        var registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
        // Two of Micrometer's standard process meters break Prometheus' naming rules (promtool
        // check metrics): "system_cpu_count" (a gauge with a _count suffix) is renamed, and
        // "process_cpu_time_ns_total" (abbreviated unit) is dropped; process_cpu_usage stays.
        registry.config().meterFilter(new MeterFilter() {
            @Override
            public Meter.Id map(Meter.Id id) {
                return id.getName().equals("system.cpu.count") ? id.withName("system.cpus") : id;
            }
        });
        registry.config().meterFilter(MeterFilter.denyNameStartsWith("process.cpu.time"));
        for (MeterBinder b : new MeterBinder[] {new JvmMemoryMetrics(), new JvmGcMetrics(), new JvmThreadMetrics(),
                new ClassLoaderMetrics(), new ProcessorMetrics(), new UptimeMetrics(), new FileDescriptorMetrics()}) {
            b.bindTo(registry);
        }
        QuiesceMetrics.bind(group, registry);
        return registry;
    }

    /**
     * Starts serving on {@code group}.
     *
     * @param group the reactors
     * @param address where to listen
     * @param timeouts the timeouts
     * @return the server
     * @throws IOException if it cannot listen (a {@link java.net.BindException} if the port is taken)
     */
    public static Server start(ReactorGroup group, InetSocketAddress address, Timeouts timeouts) throws IOException {
        return start(group, address, timeouts, null);
    }

    /**
     * Starts serving on {@code group}, with {@code GET /metrics} answered from {@code metrics}.
     *
     * @param group the reactors
     * @param address where to listen
     * @param timeouts the timeouts
     * @param metrics the Prometheus text to serve at {@code /metrics}, or null for a 404 there;
     *        called on the reactor thread, so that pipelined responses keep their order
     * @return the server
     * @throws IOException if it cannot listen (a {@link java.net.BindException} if the port is taken)
     */
    public static Server start(ReactorGroup group, InetSocketAddress address, Timeouts timeouts,
            Supplier<String> metrics) throws IOException {
        ConnectionOptions connection = ConnectionOptions.defaults().withTimeouts(timeouts.idle(), timeouts.write());
        return Server.bind(group, address, ServerOptions.defaults().withConnection(connection),
                () -> new Exchange(timeouts.header(), metrics));
    }

    // ------------------------------------------------------------------ responses

    private static final byte[] HELLO_HEAD = ascii("HTTP/1.1 200 OK\r\nServer: quiesce\r\n"
            + "Content-Type: text/plain\r\nContent-Length: 13\r\n");
    private static final byte[] HELLO_BODY = ascii("Hello, World!");
    private static final byte[] KEEP_ALIVE = ascii("Connection: keep-alive\r\n");
    private static final byte[] CLOSE = ascii("Connection: close\r\n");
    private static final byte[] CRLF = ascii("\r\n");
    private static final byte[] NOT_FOUND = error(404, "Not Found", "", false);
    private static final byte[] NOT_FOUND_CLOSE = error(404, "Not Found", "", true);
    private static final byte[] METHOD_NOT_ALLOWED = error(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", true);
    private static final byte[] BAD_REQUEST = error(400, "Bad Request", "", true);
    private static final byte[] TOO_LARGE = error(431, "Request Header Fields Too Large", "", true);
    private static final byte[] TIMEOUT = error(408, "Request Timeout", "", true);

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static byte[] error(int status, String reason, String extra, boolean close) {
        String body = status + " " + reason + "\n";
        return ascii("HTTP/1.1 " + status + " " + reason + "\r\nServer: quiesce\r\n" + extra
                + "Content-Type: text/plain\r\nContent-Length: " + body.length() + "\r\n"
                + (close ? "Connection: close\r\n" : "") + "\r\n" + body);
    }

    /** The {@code Date} header line, made once per second (not per request). */
    private static final class DateLine {
        private static final DateTimeFormatter RFC_1123 = DateTimeFormatter.RFC_1123_DATE_TIME;
        private static volatile DateLine current = new DateLine(-1);
        final long second;
        final byte[] bytes;

        private DateLine(long second) {
            this.second = second;
            this.bytes = second < 0 ? new byte[0] : ascii("Date: " + RFC_1123.format(
                    ZonedDateTime.ofInstant(java.time.Instant.ofEpochSecond(second), ZoneOffset.UTC)) + "\r\n");
        }

        static byte[] now() {
            long s = System.currentTimeMillis() / 1000;
            DateLine d = current;
            if (d.second != s) {
                current = d = new DateLine(s);
            }
            return d.bytes;
        }
    }

    // ------------------------------------------------------------------ one connection

    /** Each reactor thread's parse buffer: a read (64 KiB) plus a pending partial request. */
    private static final ThreadLocal<byte[]> SCRATCH = ThreadLocal.withInitial(() -> new byte[128 * 1024]);

    /** The HTTP/1.1 state of one connection. Runs on its reactor thread only. */
    static final class Exchange implements ConnectionHandler {
        private final Duration headerTimeout;
        private final Supplier<String> metrics;
        private byte[] pending;
        private int pendingLength;
        private long bodyToSkip;
        private boolean done;
        private ScheduledTask headerTimer;

        Exchange(Duration headerTimeout, Supplier<String> metrics) {
            this.headerTimeout = headerTimeout;
            this.metrics = metrics;
        }

        @Override
        public void onRead(Connection c, MemorySegment data) {
            if (done) {
                return;
            }
            long n = data.byteSize();
            long skip = Math.min(bodyToSkip, n);
            bodyToSkip -= skip;
            n -= skip;
            if (n == 0) {
                return;
            }
            byte[] buf = SCRATCH.get();
            int len = pendingLength;
            if (len > 0) {
                System.arraycopy(pending, 0, buf, 0, len);
            }
            MemorySegment.copy(data, ValueLayout.JAVA_BYTE, skip, buf, len, (int) n);
            len += (int) n;
            int pos = 0;
            while (pos < len && !done) {
                int used = handleOne(c, buf, pos, len);
                if (used == 0) {
                    break;
                }
                pos += used;
                if (bodyToSkip > 0) {
                    int s = (int) Math.min(bodyToSkip, len - pos);
                    bodyToSkip -= s;
                    pos += s;
                }
            }
            int left = done ? 0 : len - pos;
            if (left > 0) {
                if (pending == null) {
                    pending = new byte[MAX_HEADER_BYTES];
                }
                System.arraycopy(buf, pos, pending, 0, left); // handleOne sent 431 past MAX_HEADER_BYTES
                if (headerTimer == null) {
                    headerTimer = c.reactor().schedule(headerTimeout.toNanos(), TimeUnit.NANOSECONDS, () -> {
                        headerTimer = null;
                        if (!done && pendingLength > 0) {
                            fail(c, TIMEOUT);
                        }
                    });
                }
            } else if (headerTimer != null) {
                headerTimer.cancel();
                headerTimer = null;
            }
            pendingLength = left;
            if (!c.isWritable()) {
                c.pauseReading(); // a pipelining client that does not read its responses
            }
        }

        @Override
        public void onWritable(Connection c) {
            c.resumeReading();
        }

        @Override
        public void onClose(Connection c, Throwable cause) {
            if (headerTimer != null) {
                headerTimer.cancel();
            }
        }

        private void fail(Connection c, byte[] response) {
            done = true;
            c.write(response);
            c.close();
        }

        /**
         * Handles the request at {@code buf[from, to)} if its header section is complete.
         *
         * @return bytes used (its header section), or 0 if more bytes are needed
         */
        private int handleOne(Connection c, byte[] buf, int from, int to) {
            int end = headerEnd(buf, from, Math.min(to, from + MAX_HEADER_BYTES));
            if (end < 0) {
                if (to - from >= MAX_HEADER_BYTES) {
                    fail(c, TOO_LARGE);
                }
                return 0;
            }
            // ---- request line: method SP target SP version
            int p = from;
            int methodStart = p;
            while (p < end && isTchar(buf[p])) {
                p++;
            }
            int methodEnd = p;
            if (methodEnd == methodStart || p >= end || buf[p] != ' ') {
                fail(c, BAD_REQUEST);
                return 0;
            }
            int targetStart = ++p;
            while (p < end && buf[p] > ' ' && buf[p] != 0x7f) {
                p++;
            }
            int targetEnd = p;
            if (targetEnd == targetStart || p >= end || buf[p] != ' ' || buf[targetStart] != '/') {
                fail(c, BAD_REQUEST);
                return 0;
            }
            p++;
            int minor;
            if (p + 8 <= end && matches(buf, p, "HTTP/1.") && (buf[p + 7] == '0' || buf[p + 7] == '1')) {
                minor = buf[p + 7] - '0';
                p += 8;
            } else {
                fail(c, BAD_REQUEST);
                return 0;
            }
            p = lineEnd(buf, p, end);
            if (p < 0) {
                fail(c, BAD_REQUEST);
                return 0;
            }
            // ---- headers
            boolean host = false;
            boolean close = minor == 0;
            long contentLength = 0;
            boolean sawLength = false;
            while (p < end) {
                if (buf[p] == '\r' || buf[p] == '\n') {
                    break; // the empty line
                }
                int nameStart = p;
                while (p < end && isTchar(buf[p])) {
                    p++;
                }
                if (p == nameStart || p >= end || buf[p] != ':') {
                    fail(c, BAD_REQUEST); // no name, space before the colon, obsolete folding...
                    return 0;
                }
                int nameEnd = p++;
                while (p < end && (buf[p] == ' ' || buf[p] == '\t')) {
                    p++;
                }
                int valueStart = p;
                while (p < end && buf[p] != '\r' && buf[p] != '\n') {
                    byte b = buf[p];
                    if ((b < ' ' && b != '\t') || b == 0x7f) {
                        fail(c, BAD_REQUEST);
                        return 0;
                    }
                    p++;
                }
                int valueEnd = p;
                while (valueEnd > valueStart && (buf[valueEnd - 1] == ' ' || buf[valueEnd - 1] == '\t')) {
                    valueEnd--;
                }
                p = lineEnd(buf, p, end);
                if (p < 0) {
                    fail(c, BAD_REQUEST);
                    return 0;
                }
                int nameLen = nameEnd - nameStart;
                if (nameLen == 4 && equalsIgnoreCase(buf, nameStart, "host")) {
                    host = true;
                } else if (nameLen == 10 && equalsIgnoreCase(buf, nameStart, "connection")) {
                    if (containsIgnoreCase(buf, valueStart, valueEnd, "close")) {
                        close = true;
                    } else if (containsIgnoreCase(buf, valueStart, valueEnd, "keep-alive")) {
                        close = false;
                    }
                } else if (nameLen == 14 && equalsIgnoreCase(buf, nameStart, "content-length")) {
                    long v = digits(buf, valueStart, valueEnd);
                    if (v < 0 || (sawLength && v != contentLength)) {
                        fail(c, BAD_REQUEST);
                        return 0;
                    }
                    sawLength = true;
                    contentLength = v;
                } else if (nameLen == 17 && equalsIgnoreCase(buf, nameStart, "transfer-encoding")) {
                    fail(c, BAD_REQUEST); // request bodies in chunks are not supported here
                    return 0;
                }
            }
            int used = lineEnd(buf, end, to) - from; // through the blank line
            if (minor == 1 && !host) {
                fail(c, BAD_REQUEST);
                return 0;
            }
            if (contentLength > MAX_BODY_BYTES) {
                close = true;
            }
            bodyToSkip = contentLength;
            respond(c, buf, methodStart, methodEnd, targetStart, targetEnd, minor, close);
            return used;
        }

        private void respond(Connection c, byte[] buf, int methodStart, int methodEnd, int targetStart,
                int targetEnd, int minor, boolean close) {
            int pathEnd = targetStart;
            while (pathEnd < targetEnd && buf[pathEnd] != '?') {
                pathEnd++;
            }
            int pathLen = pathEnd - targetStart;
            boolean isMetrics = metrics != null && pathLen == 8 && matches(buf, targetStart, "/metrics");
            boolean known = pathLen == 1 || (pathLen == 10 && matches(buf, targetStart, "/plaintext")) || isMetrics;
            if (!known) {
                if (close) {
                    fail(c, NOT_FOUND_CLOSE);
                } else {
                    c.write(NOT_FOUND);
                }
                return;
            }
            int methodLen = methodEnd - methodStart;
            boolean get = methodLen == 3 && matches(buf, methodStart, "GET");
            boolean head = methodLen == 4 && matches(buf, methodStart, "HEAD");
            if (!get && !head) {
                fail(c, METHOD_NOT_ALLOWED);
                return;
            }
            if (isMetrics) {
                byte[] body = metrics.get().getBytes(StandardCharsets.UTF_8);
                c.write(ascii("HTTP/1.1 200 OK\r\nServer: quiesce\r\n"
                        + "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                        + "Content-Length: " + body.length + "\r\n"));
                c.write(DateLine.now());
                c.write(close ? CLOSE : minor == 0 ? KEEP_ALIVE : new byte[0]);
                c.write(CRLF);
                if (get) {
                    c.write(body);
                }
                if (close) {
                    done = true;
                    c.close();
                }
                return;
            }
            c.write(HELLO_HEAD);
            c.write(DateLine.now());
            if (close) {
                c.write(CLOSE);
            } else if (minor == 0) {
                c.write(KEEP_ALIVE);
            }
            c.write(CRLF);
            if (get) {
                c.write(HELLO_BODY);
            }
            if (close) {
                done = true;
                c.close();
            }
        }
    }

    // ------------------------------------------------------------------ parsing helpers

    /**
     * {@return where the blank line that ends the header section starts, or -1 if it is not all
     * in {@code b[from, to)}} Lines end with CRLF or a bare LF.
     */
    static int headerEnd(byte[] b, int from, int to) {
        for (int i = from; i < to; i++) {
            if (b[i] == '\n') {
                int j = i + 1;
                if (j < to && b[j] == '\n') {
                    return j;
                }
                if (j + 1 < to && b[j] == '\r' && b[j + 1] == '\n') {
                    return j;
                }
            }
        }
        return -1;
    }

    /** At {@code p}: an optional CR then LF; {@return the index after them, or -1} */
    private static int lineEnd(byte[] b, int p, int to) {
        if (p < to && b[p] == '\r') {
            p++;
        }
        return p < to && b[p] == '\n' ? p + 1 : -1;
    }

    private static boolean isTchar(byte b) {
        return (b >= 'a' && b <= 'z') || (b >= 'A' && b <= 'Z') || (b >= '0' && b <= '9')
                || "!#$%&'*+-.^_`|~".indexOf(b) >= 0;
    }

    private static boolean matches(byte[] b, int at, String s) {
        for (int i = 0; i < s.length(); i++) {
            if (b[at + i] != s.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private static boolean equalsIgnoreCase(byte[] b, int at, String lower) {
        for (int i = 0; i < lower.length(); i++) {
            if ((b[at + i] | 0x20) != lower.charAt(i) && b[at + i] != lower.charAt(i)) {
                return false;
            }
        }
        return true;
    }

    private static boolean containsIgnoreCase(byte[] b, int from, int to, String lower) {
        for (int i = from; i + lower.length() <= to; i++) {
            if (equalsIgnoreCase(b, i, lower)) {
                return true;
            }
        }
        return false;
    }

    /** {@return the decimal value of {@code b[from, to)}, or -1 if it is not one (or too long)} */
    private static long digits(byte[] b, int from, int to) {
        if (from == to || to - from > 18) {
            return -1;
        }
        long v = 0;
        for (int i = from; i < to; i++) {
            if (b[i] < '0' || b[i] > '9') {
                return -1;
            }
            v = v * 10 + (b[i] - '0');
        }
        return v;
    }
}
