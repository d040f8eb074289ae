package io.quiesce.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.reactor.ReactorStats.Counter;

import java.time.Duration;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * Exports the counters every reactor keeps anyway as Micrometer meters named {@code quiesce.*}
 * (Prometheus: {@code quiesce_*}), tagged {@code reactor} with the reactor's index. The meters
 * only read the reactors' single-writer counters when the registry is scraped: binding adds no
 * work, and no Micrometer call, to the event path.
 *
 * <pre>{@code
 * var registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
 * QuiesceMetrics.bind(group, registry);
 * String text = registry.scrape();
 * }</pre>
 *
 * <p>Micrometer is an optional dependency of Quiesce: only this package needs it.
 */
public final class QuiesceMetrics implements MeterBinder {
    /** Close-latency histogram buckets: 10 µs to 100 ms. */
    private static final Duration[] CLOSE_LATENCY_BUCKETS = java.util.stream.LongStream
            .of(10, 25, 50, 100, 250, 500, 1_000, 5_000, 25_000, 100_000)
            .mapToObj(Duration::ofNanos).map(d -> d.multipliedBy(1_000)).toArray(Duration[]::new);

    private final ReactorGroup group;

    /**
     * Makes a binder for {@code group}'s reactors.
     *
     * @param group the reactors to export
     */
    public QuiesceMetrics(ReactorGroup group) {
        this.group = group;
    }

    /**
     * Binds {@code group}'s meters to {@code registry}.
     *
     * @param group the reactors to export
     * @param registry where to register the meters
     * @return the binder
     */
    public static QuiesceMetrics bind(ReactorGroup group, MeterRegistry registry) {
        var m = new QuiesceMetrics(group);
        m.bindTo(registry);
        return m;
    }

    @Override
    public void bindTo(MeterRegistry registry) {
        for (Reactor r : group.reactors()) {
            bindReactor(registry, r.stats(), Tags.of("reactor", Integer.toString(r.index())));
        }
    }

    private static void bindReactor(MeterRegistry reg, ReactorStats s, Tags tags) {
        count(reg, s, tags, "quiesce.events.dispatched", Counter.EVENTS_DISPATCHED, "events handed to handlers");
        count(reg, s, tags, "quiesce.events.stale", Counter.STALE_EVENTS_DROPPED,
                "events dropped because their handle was gone (token generation mismatch)");
        count(reg, s, tags, "quiesce.epoll.waits", Counter.EPOLL_WAITS, "epoll_wait calls");
        count(reg, s, tags, "quiesce.epoll.waits.empty", Counter.EPOLL_WAITS_EMPTY, "epoll_wait calls that returned no event");
        count(reg, s, tags, "quiesce.events.array.growths", Counter.EVENT_ARRAY_GROWTHS, "times the events array grew");
        count(reg, s, tags, "quiesce.tasks.run", Counter.TASKS_RUN, "tasks run on the reactor");
        count(reg, s, tags, "quiesce.timers.fired", Counter.TIMERS_FIRED, "timers fired");
        count(reg, s, tags, "quiesce.handles.registered", Counter.HANDLES_REGISTERED, "handles registered");
        count(reg, s, tags, "quiesce.closes", Counter.CLOSES_COMPLETED, "handle closes completed (fd released)");
        count(reg, s, tags, "quiesce.close.errors", Counter.CLOSE_ERRORS, "close(fd) calls that failed");
        count(reg, s, tags, "quiesce.handler.failures", Counter.HANDLER_FAILURES, "handler exceptions (each closed its handle)");

        function(reg, s, tags.and("kind", "sent"), "quiesce.wakeups", ReactorStats::wakeupsSent,
                "eventfd wakeups sent (reactor parked)");
        function(reg, s, tags.and("kind", "elided"), "quiesce.wakeups", ReactorStats::wakeupsElided,
                "wakeups not sent because the reactor was running");
        count(reg, s, tags.and("kind", "received"), "quiesce.wakeups", Counter.WAKEUPS_RECEIVED,
                "wakeup events seen by the reactor");

        for (var op : new String[] {"add", "mod", "del"}) {
            Counter issued = Counter.valueOf("CTL_" + op.toUpperCase(Locale.ROOT));
            Counter saved = Counter.valueOf("CTL_" + op.toUpperCase(Locale.ROOT) + "_SAVED");
            count(reg, s, tags.and("op", op, "outcome", "issued"), "quiesce.epoll.ctl", issued,
                    "epoll_ctl calls issued, or saved by coalescing");
            count(reg, s, tags.and("op", op, "outcome", "saved"), "quiesce.epoll.ctl", saved,
                    "epoll_ctl calls issued, or saved by coalescing");
        }
        count(reg, s, tags.and("from", "EEXIST"), "quiesce.epoll.ctl.remapped", Counter.CTL_EEXIST_AS_MOD,
                "epoll_ctl errors mapped: ADD meeting EEXIST issued as MOD, MOD meeting ENOENT as ADD");
        count(reg, s, tags.and("from", "ENOENT"), "quiesce.epoll.ctl.remapped", Counter.CTL_ENOENT_AS_ADD,
                "epoll_ctl errors mapped: ADD meeting EEXIST issued as MOD, MOD meeting ENOENT as ADD");
        count(reg, s, tags, "quiesce.epoll.ctl.dropped", Counter.CTL_DROPPED_CLOSING,
                "pending interest changes dropped because the handle was closing");

        seconds(reg, s, tags, "quiesce.loop.busy", Counter.BUSY_NANOS, "time the reactor spent running");
        seconds(reg, s, tags, "quiesce.loop.wait", Counter.WAIT_NANOS, "time the reactor spent in epoll_wait");

        Gauge.builder("quiesce.handles.open", s, ReactorStats::handlesOpen).tags(tags)
                .description("handles registered and not yet closed").register(reg);
        Gauge.builder("quiesce.tasks.pending", s, ReactorStats::taskQueueDepth).tags(tags)
                .description("tasks queued and not yet run").register(reg);

        // A real histogram (Prometheus _bucket/_count/_sum) fed once per close, never per event.
        Timer closeLatency = Timer.builder("quiesce.close.latency").tags(tags)
                .description("close requested to fd released")
                .serviceLevelObjectives(CLOSE_LATENCY_BUCKETS)
                .register(reg);
        s.closeLatencyListener(nanos -> closeLatency.record(nanos, TimeUnit.NANOSECONDS));

        count(reg, s, tags, "quiesce.accepts", Counter.ACCEPTS, "connections accepted");
        count(reg, s, tags, "quiesce.accept.errors", Counter.ACCEPT_ERRORS, "accept4 failures other than EAGAIN");
        count(reg, s, tags, "quiesce.accept.backoffs", Counter.ACCEPT_BACKOFFS,
                "accept pauses after EMFILE/ENFILE");
        count(reg, s, tags, "quiesce.connections.opened", Counter.CONNECTIONS_OPENED, "connections opened");
        count(reg, s, tags, "quiesce.connections.closed", Counter.CONNECTIONS_CLOSED, "connections closed");
        Gauge.builder("quiesce.connections.open", s,
                        x -> x.get(Counter.CONNECTIONS_OPENED) - x.get(Counter.CONNECTIONS_CLOSED))
                .tags(tags).description("connections open").register(reg);
        FunctionCounter.builder("quiesce.io", s, x -> x.get(Counter.BYTES_READ)).baseUnit("bytes")
                .tags(tags.and("direction", "read")).description("bytes read from or written to sockets").register(reg);
        FunctionCounter.builder("quiesce.io", s, x -> x.get(Counter.BYTES_WRITTEN)).baseUnit("bytes")
                .tags(tags.and("direction", "written")).description("bytes read from or written to sockets").register(reg);
    }

    private static void count(MeterRegistry reg, ReactorStats s, Tags tags, String name, Counter c, String help) {
        FunctionCounter.builder(name, s, x -> x.get(c)).tags(tags).description(help).register(reg);
    }

    private static void function(MeterRegistry reg, ReactorStats s, Tags tags, String name,
                                 ToDoubleFunction<ReactorStats> f, String help) {
        FunctionCounter.builder(name, s, f).tags(tags).description(help).register(reg);
    }

    private static void seconds(MeterRegistry reg, ReactorStats s, Tags tags, String name, Counter c, String help) {
        FunctionCounter.builder(name, s, x -> x.get(c) / 1e9).baseUnit("seconds").tags(tags).description(help)
                .register(reg);
    }
}
