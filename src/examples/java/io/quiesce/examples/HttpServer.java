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
import io.quiesce.net.ConnectionOptions;
import io.quiesce.net.Server;
import io.quiesce.net.ServerOptions;
import io.quiesce.reactor.ReactorGroup;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
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
        ReactorGroup group = ReactorGroup.start(args.groupOptions("http-"));
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
        QuiesceMetrics.bind(group, "http", io.micrometer.core.instrument.Tags.empty(), registry);
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
        ConnectionOptions connection = ConnectionOptions.builder().timeouts(timeouts.idle(), timeouts.write()).build();
        return Server.bind(group, address, ServerOptions.defaults().withConnection(connection),
                () -> new HttpExchange(timeouts.header(), metrics));
    }
}
