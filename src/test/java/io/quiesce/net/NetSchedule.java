package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.testing.FdSnapshot;
import io.quiesce.testing.Signals;

import java.io.IOException;
import java.net.InetSocketAddress;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.LockSupport;
import java.util.random.RandomGenerator;
import java.util.random.RandomGenerator.SplittableGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * The network random schedule: real TCP on 127.0.0.1 through {@link Server}, {@link Client} and
 * {@link Connection} on a group of two reactors of one backend (epoll, batch or the io_uring
 * transport), with worker threads, released together, acting on random links at once: connect
 * (a Quiesce client, or a plain JDK socket), write small frames in bursts (many chunks queued: a
 * gathering {@code sendmsg}) and large ones (short sends), pause and resume reading, half-close,
 * close, abort, and a server close and a group close at a planned moment. The handlers make
 * choices of their own on the reactor threads (replies, pauses, a thrown exception, closes); one
 * server's connections have idle and write timeouts and small socket buffers; half the rounds
 * signals hit the reactor threads.
 *
 * <p>Every direction of every link is a stream of {@link Frames} tagged with the link's id, the
 * direction and a sequence number, parsed as it arrives: a byte delivered to the wrong connection
 * (a stale completion), lost, duplicated or reordered shows at once. Checked at the end of a
 * round: every connect future completed; every opened connection's close future completed and
 * its {@code onClose} ran exactly once, after every other callback and with its fd released and
 * no io_uring op in flight ({@link NetEnd}); a receiver that saw end of stream from a sender that
 * closed without a cause received exactly the frames whose writes answered true, never more
 * from any sender; no connection counted open; {@code /proc/self/fd} back to where it started; no
 * reactor thread alive. The seed fixes each thread's choices; the interleaving is the machine's.
 */
final class NetSchedule {
    /**
     * How big a round is.
     *
     * @param seed the seed of every random choice
     * @param io the backend
     * @param workers threads acting at once
     * @param opsPerWorker operations per thread
     * @param slots links live at once (a link displaced from its slot lives on until it closes)
     * @param maxMillis a worker stops early after this long
     */
    record Config(long seed, ReactorGroup.Io io, int workers, int opsPerWorker, int slots, long maxMillis) {}

    /** The counts of one or more rounds; {@link #line()} is what a run prints. */
    record Result(long connections, long checkedStreams, long framesChecked, long streamErrors, long callbacksAfterClose,
                  long doubleCloses, long leakedFds, long stuckCloses, long opsInFlightAtClose, long timeouts,
                  long handlerThrows, long interrupted, long staleCqes, long uringCancels, List<String> failures) {
        boolean clean() {
            return failures.isEmpty() && streamErrors == 0 && callbacksAfterClose == 0 && doubleCloses == 0
                    && leakedFds == 0 && stuckCloses == 0 && opsInFlightAtClose == 0;
        }

        Result plus(Result o) {
            List<String> f = new ArrayList<>(failures);
            f.addAll(o.failures);
            return new Result(connections + o.connections, checkedStreams + o.checkedStreams,
                    framesChecked + o.framesChecked, streamErrors + o.streamErrors,
                    callbacksAfterClose + o.callbacksAfterClose, doubleCloses + o.doubleCloses, leakedFds + o.leakedFds,
                    stuckCloses + o.stuckCloses, opsInFlightAtClose + o.opsInFlightAtClose, timeouts + o.timeouts,
                    handlerThrows + o.handlerThrows, interrupted + o.interrupted, staleCqes + o.staleCqes,
                    uringCancels + o.uringCancels, f);
        }

        static Result empty() {
            return new Result(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, List.of());
        }

        String line() {
            return "connections=" + connections + " checked_streams=" + checkedStreams + " frames_checked=" + framesChecked
                    + " stream_errors=" + streamErrors + " callbacks_after_close=" + callbacksAfterClose
                    + " double_closes=" + doubleCloses + " leaked_fds=" + leakedFds + " stuck_closes=" + stuckCloses
                    + " ops_in_flight_at_close=" + opsInFlightAtClose + " timeouts=" + timeouts
                    + " handler_throws=" + handlerThrows + " eintr=" + interrupted
                    + " stale_cqes=" + staleCqes + " uring_cancels=" + uringCancels;
        }
    }

    /** One end of a link, as the workers and the checks see it (a {@link NetEnd} or a {@link JdkPeer}). */
    interface End {
        void writeFrames(int n, int maxLength, RandomGenerator rnd);

        boolean writable();

        void pause(int millis);

        void resume();

        void shutdownOutput();

        void close();

        void abort();

        long framesSent();

        /** {@return whether every frame counted by {@link #framesSent()} went out before the FIN} */
        boolean sentEverything();

        /**
         * {@return whether this end read end of stream and no reset: only then did a FIN, which
         * follows all the peer's data, end the stream} Linux reports a reset's error once: when a
         * send takes it, the next read returns 0, an end of stream that no FIN made.
         */
        boolean sawEof();

        Frames.Parser parser();

        boolean finished();
    }

    /** A connection from a client to a server, by the client's id; the accepted end joins on the hello. */
    static final class Link {
        final long id;
        volatile int clientPort = -1;
        volatile End client;
        volatile NetEnd server;
        volatile CompletableFuture<Connection> connect;
        /** The settling thread half-closed the client. */
        boolean settled;

        Link(long id) {
            this.id = id;
        }
    }

    private static final AtomicInteger ROUNDS = new AtomicInteger();
    private static final int MAX_FAILURES = 20;
    /** How long the end of a round may take to close everything by itself. */
    private static final long SETTLE_SECONDS = 15;
    /** JDK peers open at once (two threads each). */
    private static final int MAX_JDK_PEERS = 6;

    final Config config;
    final String prefix = "ns" + ROUNDS.incrementAndGet() + "-";
    final LongAdder streamErrors = new LongAdder();
    final LongAdder callbacksAfterClose = new LongAdder();
    final LongAdder doubleCloses = new LongAdder();
    final LongAdder leakedFds = new LongAdder();
    final LongAdder opsInFlightAtClose = new LongAdder();
    final LongAdder timeouts = new LongAdder();
    final LongAdder handlerThrows = new LongAdder();
    /** Frames received whole, by every end: a group close waits for some traffic first. */
    final LongAdder framesReceived = new LongAdder();
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
    private final AtomicInteger failureCount = new AtomicInteger();
    /** Bytes gone wrong are reported first, apart: a flood of other failures must not hide them. */
    private final ConcurrentLinkedQueue<String> streamFailures = new ConcurrentLinkedQueue<>();
    private final AtomicInteger streamFailureCount = new AtomicInteger();
    private final AtomicLong linkIds = new AtomicLong(1);
    private final Map<Long, Link> links = new ConcurrentHashMap<>();
    private final AtomicReferenceArray<Link> slots;
    /** Every Quiesce end that opened (accepted or connected). */
    private final ConcurrentLinkedQueue<NetEnd> opened = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<JdkPeer> jdkPeers = new ConcurrentLinkedQueue<>();
    final AtomicBoolean groupClosing = new AtomicBoolean();
    /** Set when the workers are done: readers stop pausing, idle threads go. */
    volatile boolean ending;
    private final List<Server> servers = new ArrayList<>();
    private final AtomicLong handlerSeeds;
    private ReactorGroup group;

    private NetSchedule(Config config) {
        this.config = config;
        this.slots = new AtomicReferenceArray<>(config.slots());
        this.handlerSeeds = new AtomicLong(config.seed() * 0x9E37_79B9_7F4A_7C15L);
    }

    /** Runs one round. */
    static Result run(Config config) throws Exception {
        return new NetSchedule(config).go();
    }

    void failure(String what) {
        if (failureCount.incrementAndGet() <= MAX_FAILURES) {
            failures.add(what);
        }
    }

    void streamError(Object who, String what) {
        streamErrors.increment();
        if (streamFailureCount.incrementAndGet() <= MAX_FAILURES / 2) {
            streamFailures.add(who + ": " + what);
        }
    }

    Link link(long id) {
        return links.get(id);
    }

    void opened(NetEnd e) {
        opened.add(e);
    }

    // ------------------------------------------------------------------ the round

    private Result go() throws Exception {
        FdSnapshot before = FdSnapshot.take();
        SplittableGenerator master = RandomGeneratorFactory.<SplittableGenerator>of("L64X128MixRandom").create(config.seed());
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix(prefix)
                .withIo(config.io()));
        // Server 0: the defaults. Server 1: idle and write timeouts that fire, and small socket
        // buffers, so sends go short and queues back up.
        servers.add(Server.bind(group, NetTesting.loopback(0), () -> new NetEnd(this, true, null, handlerSeeds.incrementAndGet())));
        var timed = ConnectionOptions.builder().bufferSizes(16 * 1024, 16 * 1024)
                .timeouts(Duration.ofMillis(40 + master.nextInt(80)), Duration.ofMillis(60 + master.nextInt(140))).build();
        servers.add(Server.bind(group, NetTesting.loopback(0), ServerOptions.defaults().withConnection(timed),
                () -> new NetEnd(this, true, null, handlerSeeds.incrementAndGet())));
        int tenth = config.opsPerWorker() / 10;
        int groupCloser = master.nextInt(config.workers());
        // A group close in the second half of a round, one round in four: the first half makes
        // the traffic that a round without one checks at its end.
        int half = config.opsPerWorker() / 2;
        int groupCloseAt = master.nextInt(4) == 0 ? half + master.nextInt(half) : -1;
        int groupCloseHow = master.nextInt(4);
        int serverCloser = master.nextInt(config.workers());
        int serverCloseAt = master.nextBoolean() ? tenth + master.nextInt(config.opsPerWorker() - tenth) : -1;
        var start = new CountDownLatch(1);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.maxMillis());
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < config.workers(); i++) {
            RandomGenerator rnd = master.split();
            int gAt = i == groupCloser ? groupCloseAt : -1;
            int sAt = i == serverCloser ? serverCloseAt : -1;
            workers.add(Thread.ofPlatform().name(prefix + "worker-" + i)
                    .start(() -> work(start, rnd, gAt, groupCloseHow, sAt, deadline)));
        }
        var stopSignals = new AtomicBoolean();
        Thread signaller = master.nextBoolean() ? signaller(stopSignals) : null;
        start.countDown();
        for (Thread t : workers) {
            t.join(config.maxMillis() + 60_000);
            if (t.isAlive()) {
                failure("worker " + t.getName() + " never finished: " + List.of(t.getStackTrace()));
            }
        }
        if (!groupClosing.get()) {
            settle();
        }
        ending = true;
        try {
            group.close(Duration.ofSeconds(20));
        } catch (TimeoutException e) {
            failure("group close: " + e.getMessage() + "; " + group.reactors().stream().map(Reactor::stats).toList());
        }
        stopSignals.set(true);
        if (signaller != null) {
            signaller.join();
        }
        for (JdkPeer p : jdkPeers) {
            p.stop();
        }
        long staleCqes = 0;
        long cancels = 0;
        long interrupted = 0;
        for (Reactor r : group.reactors()) {
            interrupted += r.stats().get(Counter.EPOLL_WAITS_INTERRUPTED);
            staleCqes += r.stats().get(Counter.URING_STALE_CQES);
            cancels += r.stats().get(Counter.URING_CANCELS);
            if (r.stats().get(Counter.CLOSE_ERRORS) > 0) {
                doubleCloses.add(r.stats().get(Counter.CLOSE_ERRORS));
                failure("reactor " + r.index() + " close(fd) errors: " + r.stats());
            }
        }
        return result(before, staleCqes, cancels, interrupted);
    }

    /**
     * No group close happened: every client half-closes and every end resumes reading; the
     * handlers close once both directions have ended ({@link NetEnd#onPeerClosed}), and the JDK
     * peers once they read end of stream. Everything must close by itself, bounded.
     */
    private void settle() throws Exception {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(SETTLE_SECONDS);
        long nextResume = System.nanoTime();
        while (true) {
            for (Link l : links.values()) {
                halfCloseOnce(l);
            }
            if (allFinished()) {
                break;
            }
            if (System.nanoTime() - nextResume > 0) {
                nextResume = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(500);
                opened.forEach(NetEnd::resume); // every pause has its timed resume; belt and braces
            }
            if (System.nanoTime() - deadline > 0) {
                for (NetEnd e : opened) {
                    if (!e.finished()) {
                        failure("did not close by itself within " + SETTLE_SECONDS + " s: " + e);
                    }
                }
                for (JdkPeer p : jdkPeers) {
                    if (!p.finished()) {
                        failure("did not close by itself within " + SETTLE_SECONDS + " s: " + p);
                    }
                }
                break;
            }
            Thread.sleep(5);
        }
        for (Server s : servers) {
            s.closeAsync().get(20, TimeUnit.SECONDS);
        }
        for (Reactor r : group.reactors()) {
            NetStats n = NetStats.of(r);
            if (n.acceptedOpen() != 0 || n.outgoingOpen() != 0) {
                failure("reactor " + r.index() + " counts connections open after every close: " + n);
            }
        }
    }

    /** The client of {@code l} resumes reading and half-closes, once it is connected (or its connect failed). */
    private static void halfCloseOnce(Link l) {
        End c = l.client;
        var f = l.connect;
        if (l.settled || c == null || (f != null && !f.isDone())) {
            return;
        }
        l.settled = true;
        c.resume();
        c.shutdownOutput();
    }

    private boolean allFinished() {
        for (NetEnd e : opened) {
            if (!e.finished()) {
                return false;
            }
        }
        for (JdkPeer p : jdkPeers) {
            if (!p.finished()) {
                return false;
            }
        }
        return true;
    }

    // ------------------------------------------------------------------ the workers

    private void work(CountDownLatch start, RandomGenerator rnd, int groupCloseAt, int groupCloseHow, int serverCloseAt,
                      long deadline) {
        try {
            start.await();
            for (int op = 0; op < config.opsPerWorker() && System.nanoTime() - deadline < 0; op++) {
                if (op == groupCloseAt) {
                    closeGroup(groupCloseHow);
                }
                if (op == serverCloseAt) {
                    servers.get(rnd.nextInt(servers.size())).close();
                }
                step(rnd);
            }
        } catch (Throwable t) {
            failure("worker " + Thread.currentThread().getName() + " threw: " + t);
        }
    }

    private void step(RandomGenerator rnd) throws Exception {
        int slot = rnd.nextInt(slots.length());
        Link l = slots.get(slot);
        int roll = rnd.nextInt(100);
        if (l == null || roll < 8) {
            connect(rnd, slot);
            return;
        }
        End e = rnd.nextInt(3) == 0 || l.server == null ? l.client : l.server;
        if (e == null) {
            return;
        }
        if (roll < 40) {
            e.writeFrames(1 + rnd.nextInt(32), 300, rnd);
        } else if (roll < 48) {
            if (e.writable()) {
                e.writeFrames(1, 64 * 1024 + rnd.nextInt(960 * 1024), rnd);
            }
        } else if (roll < 58) {
            e.pause(1 + rnd.nextInt(30));
        } else if (roll < 64) {
            e.resume();
        } else if (roll < 68) {
            e.shutdownOutput();
        } else if (roll < 72) {
            e.close();
        } else if (roll < 75) {
            e.abort();
        } else if (roll < 78) {
            LockSupport.parkNanos(TimeUnit.MILLISECONDS.toNanos(1 + rnd.nextInt(3))); // timeouts get their chance
        } else {
            e.writeFrames(1 + rnd.nextInt(4), 64, rnd);
        }
    }

    private long jdkPeersOpen() {
        return jdkPeers.stream().filter(p -> !p.finished()).count();
    }

    /** A new link in {@code slot}: a Quiesce client (most often) or a JDK socket, to a random server. */
    private void connect(RandomGenerator rnd, int slot) {
        Link l = new Link(linkIds.getAndIncrement());
        Server target = servers.get(rnd.nextInt(servers.size()));
        links.put(l.id, l);
        if (rnd.nextInt(4) == 0 && jdkPeersOpen() < MAX_JDK_PEERS && !groupClosing.get()) {
            try {
                JdkPeer p = JdkPeer.connect(this, l, target.port());
                l.client = p;
                jdkPeers.add(p);
            } catch (IOException refused) {
                links.remove(l.id); // that server is closed (or the group is)
                return;
            }
        } else {
            var options = switch (rnd.nextInt(4)) {
                case 0 -> ConnectionOptions.builder().bufferSizes(8 * 1024, 8 * 1024).build();
                case 1 -> ConnectionOptions.builder().timeouts(Duration.ofMillis(30 + rnd.nextInt(100)), Duration.ZERO).build();
                default -> ConnectionOptions.defaults();
            };
            NetEnd end = new NetEnd(this, false, l, rnd.nextLong());
            l.client = end;
            Reactor r = group.reactor(rnd.nextInt(group.size()));
            try {
                l.connect = Client.connect(r, target.localAddress(), options, Duration.ofSeconds(10), end);
            } catch (RejectedExecutionException closed) {
                links.remove(l.id);
                return;
            }
        }
        slots.set(slot, l);
    }

    private void closeGroup(int how) throws Exception {
        // Not before the round has carried some traffic (bounded): a group closed while the other
        // workers are still connecting leaves a round that checked almost nothing.
        long until = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(Math.max(config.maxMillis(), 5_000));
        while (framesReceived.sum() < 100L * config.workers() && System.nanoTime() - until < 0) {
            LockSupport.parkNanos(1_000_000);
        }
        groupClosing.set(true);
        switch (how) {
            case 0 -> group.close(Duration.ofSeconds(20));
            case 1 -> group.closeAsync();
            case 2 -> group.reactor(0).execute(group::close); // from a reactor thread: starts it and returns
            default -> group.reactor(1).schedule(1, TimeUnit.MILLISECONDS, group::close);
        }
    }

    /** A thread sending SIGPIPE to a reactor thread every ~0.2 ms until told to stop (the reactors' waits see EINTR). */
    private Thread signaller(AtomicBoolean stop) throws Exception {
        int[] tids = new int[group.size()];
        Thread[] threads = new Thread[tids.length];
        for (int i = 0; i < tids.length; i++) {
            var tid = new CompletableFuture<Integer>();
            int index = i;
            group.reactor(i).execute(() -> {
                threads[index] = Thread.currentThread();
                tid.complete(Signals.gettid());
            });
            tids[i] = tid.get(20, TimeUnit.SECONDS);
        }
        return Thread.ofPlatform().name(prefix + "signaller").start(() -> {
            for (long n = 0; !stop.get(); n++) {
                int i = (int) (n % tids.length);
                if (threads[i].isAlive()) { // a tid is reused once its thread ended
                    Signals.tgkill(tids[i], Signals.SIGPIPE);
                }
                LockSupport.parkNanos(200_000);
            }
        });
    }

    // ------------------------------------------------------------------ the checks

    private Result result(FdSnapshot before, long staleCqes, long cancels, long interrupted) throws InterruptedException {
        long checked = 0;
        long framesChecked = 0;
        long stuck = 0;
        for (Link l : links.values()) {
            var f = l.connect;
            if (f != null && !f.isDone()) {
                stuck++;
                failure("link " + l.id + ": its connect never completed");
            }
            End client = l.client;
            NetEnd server = l.server;
            if (client == null) {
                continue;
            }
            if (server != null) {
                checked += direction(l, "to the server", client, server);
                framesChecked += server.parser().frames();
            }
            if (server != null || client.parser().frames() > 0) {
                checked += direction(l, "to the client", server, client);
                framesChecked += client.parser().frames();
            }
        }
        for (NetEnd e : opened) {
            if (!e.c.closeFuture().isDone()) {
                stuck++;
                failure("stuck close: " + e);
            } else if (e.closes.get() != 1) {
                failure("closed with " + e.closes.get() + " onClose calls: " + e);
            }
        }
        for (String name : FdSnapshot.liveThreads(prefix)) {
            failure("reactor thread still alive after the group closed: " + name);
        }
        Map<Integer, String> leaked = FdSnapshot.leakedSince(before);
        if (!leaked.isEmpty()) {
            leakedFds.add(leaked.size());
            failure("fds open that were not before: " + leaked);
        }
        Map<Integer, String> vanished = FdSnapshot.vanishedSince(before);
        if (!vanished.isEmpty()) { // someone else's fd was closed: a double close on a reused number
            doubleCloses.add(vanished.size());
            failure("fds open before the round were closed by it: " + vanished);
        }
        return new Result(opened.size() + jdkPeers.size(), checked, framesChecked, streamErrors.sum(),
                callbacksAfterClose.sum(), doubleCloses.sum(), leakedFds.sum(), stuck, opsInFlightAtClose.sum(),
                timeouts.sum(), handlerThrows.sum(), interrupted, staleCqes, cancels, allFailures());
    }

    private List<String> allFailures() {
        List<String> all = new ArrayList<>(streamFailures);
        all.addAll(failures);
        return all;
    }

    /**
     * One direction of a link: never more frames than were sent (a duplicate or another
     * connection's bytes); and when the receiver saw end of stream from a sender that sent
     * everything, exactly the frames sent, none cut short. {@return 1 if the exact check applied}
     */
    private int direction(Link l, String which, End from, End to) {
        long sent = from == null ? 0 : from.framesSent();
        Frames.Parser p = to.parser();
        if (p.frames() > sent) {
            streamError("link " + l.id + " " + which, p.frames() + " frames received, " + sent + " sent: " + from + " -> " + to);
        }
        if (from == null || !to.sawEof() || !from.sentEverything()) {
            return 0;
        }
        if (p.frames() != sent || p.midFrame()) {
            streamError("link " + l.id + " " + which, "end of stream after " + p.frames() + " frames"
                    + (p.midFrame() ? " and part of one" : "") + ", yet " + sent + " were sent and the sender closed cleanly: "
                    + from + " -> " + to);
        }
        return 1;
    }
}
