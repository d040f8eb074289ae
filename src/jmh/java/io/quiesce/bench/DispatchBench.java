package io.quiesce.bench;

import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;
import org.openjdk.jmh.annotations.*;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/**
 * Per-event dispatch cost: 64 level-triggered eventfds stay readable, so every epoll_wait returns
 * 64 events; the handler only counts. The score is time per event on the reactor thread (the
 * dispatch loop's throughput, epoll_wait included); {@code -prof gc} gives allocation per event
 * (target 0 B/op).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class DispatchBench {
    /** {@code bound}: a Prometheus registry with {@code QuiesceMetrics} bound, scraped every 100 ms. */
    @Param({"none", "bound"})
    public String metrics;

    private ReactorGroup group;
    private io.micrometer.prometheusmetrics.PrometheusMeterRegistry registry;
    private Thread scraper;
    private final List<Handle> handles = new ArrayList<>();
    private volatile long events;
    private long plainEvents; // reactor thread only

    @Setup(Level.Trial)
    public void setup() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
        Reactor r = group.reactor(0);
        for (int i = 0; i < 64; i++) {
            int fd = Syscalls.current().eventfd(1, Syscalls.EFD_NONBLOCK);
            handles.add(r.register(fd, Interest.READ | Interest.LEVEL, (h, ready) -> {
                if ((++plainEvents & 63) == 0) {
                    events = plainEvents; // publish once per batch
                }
            }));
        }
        if (metrics.equals("bound")) {
            registry = new io.micrometer.prometheusmetrics.PrometheusMeterRegistry(
                    io.micrometer.prometheusmetrics.PrometheusConfig.DEFAULT);
            io.quiesce.metrics.QuiesceMetrics.bind(group, registry);
            scraper = Thread.ofPlatform().daemon().start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    registry.scrape();
                    try {
                        Thread.sleep(100);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }
    }

    @TearDown(Level.Trial)
    public void tearDown() throws InterruptedException {
        if (scraper != null) {
            scraper.interrupt();
            scraper.join();
            registry.close();
        }
        group.close();
    }

    @Benchmark
    @OperationsPerInvocation(640)
    public long dispatchPerEvent() {
        long target = events + 640;
        long now;
        while ((now = events) < target) {
            Thread.onSpinWait();
        }
        return now;
    }
}
