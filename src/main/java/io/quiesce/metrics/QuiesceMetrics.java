package io.quiesce.metrics;

import io.micrometer.core.instrument.FunctionCounter;
import io.micrometer.core.instrument.Gauge;
import io.micrometer.core.instrument.MeterRegistry;
import io.micrometer.core.instrument.Tag;
import io.micrometer.core.instrument.Tags;
import io.micrometer.core.instrument.Timer;
import io.micrometer.core.instrument.binder.MeterBinder;
import io.quiesce.net.NetStats;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.reactor.ReactorStats.Counter;

import java.time.Duration;
import java.util.Locale;
import java.util.Objects;
import java.util.Set;
import java.util.concurrent.TimeUnit;
import java.util.function.ToDoubleFunction;

/**
 * Exports the counters every reactor keeps anyway as Micrometer meters named {@code quiesce.*}
 * (Prometheus: {@code quiesce_*}), tagged {@code group} with the group's name, {@code reactor}
 * with the reactor's index, and with the extra tags given (say {@code service}, {@code region}).
 * The meters only read the reactors' single-writer counters when the registry is scraped: binding
 * adds no work, and no Micrometer call, to the event path.
 *
 * <pre>{@code
 * var registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
 * QuiesceMetrics.bind(frontends, "frontend", Tags.of("service", "api"), registry);
 * QuiesceMetrics.bind(backends, "backend", Tags.of("service", "api"), registry);
 * String text = registry.scrape();
 * }</pre>
 *
 * <p>Several groups share one registry as long as their names (or extra tags) differ; binding a
 * second group under a name already bound there is refused with an exception, because Micrometer
 * would otherwise keep the first group's meters and silently drop the second's. Connections are
 * counted apart by {@code origin}: {@code accepted} by a {@code Server}, {@code outgoing} from
 * {@code Client.connect}.
 *
 * <p>Micrometer is an optional dependency of Quiesce: only this package needs it.
 */
public final class QuiesceMetrics implements MeterBinder {
    /** The group name {@link #QuiesceMetrics(ReactorGroup)} uses. */
    public static final String DEFAULT_NAME = "default";
    /** Tag keys this binder sets itself; extra tags may not use them. */
    private static final Set<String> OWN_KEYS = Set.of("group", "reactor", "kind", "op", "outcome", "from",
            "direction", "origin", "le");
    /** Close-latency histogram buckets: 10 µs to 100 ms. */
    private static final Duration[] CLOSE_LATENCY_BUCKETS = java.util.stream.LongStream
            .of(10, 25, 50, 100, 250, 500, 1_000, 5_000, 25_000, 100_000)
            .mapToObj(Duration::ofNanos).map(d -> d.multipliedBy(1_000)).toArray(Duration[]::new);

    private final ReactorGroup group;
    private final String name;
    private final Tags tags;

    /**
     * Makes a binder for {@code group}'s reactors under the name {@value #DEFAULT_NAME} and no
     * extra tags.
     *
     * @param group the reactors to export
     */
    public QuiesceMetrics(ReactorGroup group) {
        this(group, DEFAULT_NAME, Tags.empty());
    }

    /**
     * Makes a binder for {@code group}'s reactors (the model is Micrometer's
     * {@code ExecutorServiceMetrics(executor, name, tags)}).
     *
     * @param group the reactors to export
     * @param name the group's name, the value of the {@code group} tag on every meter
     * @param tags extra tags put on every meter (not {@code group}, {@code reactor} or the other
     *        keys this binder sets)
     * @throws IllegalArgumentException if {@code name} is blank or a tag uses one of this binder's keys
     */
    public QuiesceMetrics(ReactorGroup group, String name, Iterable<Tag> tags) {
        this.group = Objects.requireNonNull(group, "group");
        if (Objects.requireNonNull(name, "name").isBlank()) {
            throw new IllegalArgumentException("the group name is blank");
        }
        this.name = name;
        this.tags = Tags.of(Objects.requireNonNull(tags, "tags"));
        for (Tag t : this.tags) {
            if (OWN_KEYS.contains(t.getKey())) {
                throw new IllegalArgumentException("tag key '" + t.getKey() + "' is set by QuiesceMetrics itself");
            }
        }
    }

    /**
     * Binds {@code group}'s meters to {@code registry} under the name {@value #DEFAULT_NAME}.
     *
     * @param group the reactors to export
     * @param registry where to register the meters
     * @return the binder
     * @throws IllegalStateException if a group of that name is already bound to {@code registry}
     */
    public static QuiesceMetrics bind(ReactorGroup group, MeterRegistry registry) {
        return bind(group, DEFAULT_NAME, Tags.empty(), registry);
    }

    /**
     * Binds {@code group}'s meters to {@code registry}, tagged {@code group=name} and {@code tags}.
     *
     * @param group the reactors to export
     * @param name the group's name
     * @param tags extra tags put on every meter
     * @param registry where to register the meters
     * @return the binder
     * @throws IllegalStateException if a group of that name and tags is already bound to {@code registry}
     */
    public static QuiesceMetrics bind(ReactorGroup group, String name, Iterable<Tag> tags, MeterRegistry registry) {
        var m = new QuiesceMetrics(group, name, tags);
        m.bindTo(registry);
        return m;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalStateException if a group of this name and tags is already bound to {@code registry}
     */
    @Override
    public void bindTo(MeterRegistry registry) {
        Tags groupTags = tags.and("group", name);
        // Micrometer hands back the meter already registered under the same name and tags, so a
        // second group with the same identity would export the first one's counters: refuse it.
        if (registry.find("quiesce.epoll.waits").tags(groupTags).meter() != null) {
            throw new IllegalStateException("a reactor group named '" + name + "' with tags " + tags
                    + " is already bound to this registry: give each group its own name");
        }
        for (Reactor r : group.reactors()) {
            Tags reactorTags = groupTags.and("reactor", Integer.toString(r.index()));
            bindReactor(registry, r.stats(), reactorTags);
            bindNet(registry, NetStats.of(r), reactorTags);
        }
    }

    private static void bindReactor(MeterRegistry reg, ReactorStats s, Tags tags) {
        count(reg, s, tags, "quiesce.events.dispatched", Counter.EVENTS_DISPATCHED, "events handed to handlers");
        count(reg, s, tags, "quiesce.events.stale", Counter.STALE_EVENTS_DROPPED,
                "events dropped because their handle was gone (token generation mismatch)");
        count(reg, s, tags, "quiesce.epoll.waits", Counter.EPOLL_WAITS, "epoll_wait calls");
        count(reg, s, tags, "quiesce.epoll.waits.empty", Counter.EPOLL_WAITS_EMPTY, "epoll_wait calls that returned no event");
        count(reg, s, tags, "quiesce.epoll.waits.interrupted", Counter.EPOLL_WAITS_INTERRUPTED,
                "waits interrupted by a signal (EINTR) and resumed for the time left");
        count(reg, s, tags, "quiesce.epoll.ctl.batched", Counter.CTL_BATCHED,
                "epoll_ctl ADDs and MODs carried by an io_uring_enter (batch backend) instead of a syscall each");
        count(reg, s, tags, "quiesce.uring.enters", Counter.URING_ENTERS,
                "io_uring_enter calls of the batch backend (each carries the iteration's interest changes and the wait)");
        count(reg, s, tags, "quiesce.uring.sqes", Counter.URING_SQES,
                "SQEs the kernel consumed on the io_uring transport (socket ops and the epoll wait)");
        count(reg, s, tags, "quiesce.uring.cqes", Counter.URING_CQES, "CQEs reaped on the io_uring transport");
        count(reg, s, tags, "quiesce.uring.cqes.stale", Counter.URING_STALE_CQES,
                "CQEs dropped because their token's generation was stale (never delivered to a reused slot)");
        count(reg, s, tags, "quiesce.uring.cancels", Counter.URING_CANCELS,
                "IORING_OP_ASYNC_CANCELs submitted (closes with ops in flight, paused reads)");
        count(reg, s, tags, "quiesce.uring.buffers.refills", Counter.URING_BUFFER_REFILLS,
                "publishes of recycled receive buffers to the provided-buffer ring");
        count(reg, s, tags, "quiesce.uring.buffers.exhausted", Counter.URING_BUFFERS_EXHAUSTED,
                "multishot receives ended by ENOBUFS (buffer ring empty) and re-armed");
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
        // The wait in progress counts too: an idle reactor reads idle, not 0/0.
        FunctionCounter.builder("quiesce.loop.wait", s, x -> x.waitNanos() / 1e9).baseUnit("seconds").tags(tags)
                .description("time the reactor spent in epoll_wait").register(reg);

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
    }

    /** The network layer's counters of one reactor, under the same tags as the reactor's. */
    private static void bindNet(MeterRegistry reg, NetStats s, Tags tags) {
        net(reg, s, tags, "quiesce.accepts", NetStats.Counter.ACCEPTS, "connections accepted");
        net(reg, s, tags, "quiesce.accept.errors", NetStats.Counter.ACCEPT_ERRORS, "accept4 failures other than EAGAIN");
        net(reg, s, tags, "quiesce.accept.backoffs", NetStats.Counter.ACCEPT_BACKOFFS,
                "accept pauses after EMFILE/ENFILE");
        for (var origin : new String[] {"accepted", "outgoing"}) {
            boolean accepted = origin.equals("accepted");
            NetStats.Counter opened = accepted ? NetStats.Counter.ACCEPTED_OPENED : NetStats.Counter.OUTGOING_OPENED;
            NetStats.Counter closed = accepted ? NetStats.Counter.ACCEPTED_CLOSED : NetStats.Counter.OUTGOING_CLOSED;
            Tags o = tags.and("origin", origin);
            net(reg, s, o, "quiesce.connections.opened", opened,
                    "connections opened: accepted by a server, or outgoing (connected by a client)");
            net(reg, s, o, "quiesce.connections.closed", closed,
                    "connections closed: accepted by a server, or outgoing (connected by a client)");
            ToDoubleFunction<NetStats> open = accepted ? NetStats::acceptedOpen : NetStats::outgoingOpen;
            Gauge.builder("quiesce.connections.open", s, open).tags(o)
                    .description("connections open: accepted by a server, or outgoing (connected by a client)")
                    .register(reg);
        }
        FunctionCounter.builder("quiesce.io", s, x -> x.get(NetStats.Counter.BYTES_READ)).baseUnit("bytes")
                .tags(tags.and("direction", "read")).description("bytes read from or written to sockets").register(reg);
        FunctionCounter.builder("quiesce.io", s, x -> x.get(NetStats.Counter.BYTES_WRITTEN)).baseUnit("bytes")
                .tags(tags.and("direction", "written")).description("bytes read from or written to sockets").register(reg);
    }

    private static void net(MeterRegistry reg, NetStats s, Tags tags, String name, NetStats.Counter c, String help) {
        FunctionCounter.builder(name, s, x -> x.get(c)).tags(tags).description(help).register(reg);
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
