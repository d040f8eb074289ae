package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.testing.FdSnapshot;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;
import java.util.random.RandomGenerator;
import java.util.random.RandomGenerator.SplittableGenerator;
import java.util.random.RandomGeneratorFactory;

/**
 * A seeded random schedule on real fds: worker threads, released together, drive eventfds, pipes
 * and socketpairs on a group of two reactors through random interleavings of register, close
 * (every flavour, from any thread, from timers, handlers and {@code onClose}), references taken
 * and dropped on any thread around a real syscall, user dups of {@code fd()}, timers, and a
 * group close at a random moment (see {@link ScheduleWorker} for the operations).
 *
 * <p>The seed fixes every thread's sequence of operations and every handler's choices; the
 * interleaving is the machine's, so a failing seed is replayed by running it again (mostly
 * repeatedly). Invariants checked at the end of a round: every close future completes
 * ({@code stuck_closes}), no {@code onEvent} after the close was processed or after
 * {@code onClose} ({@code stale_events}, {@code callbacks_after_close}), {@code onClose} at most
 * once and every {@code close(fd)} succeeds ({@code double_closes}), no event or held reference
 * meets a number that names another file ({@code wrong_handle}), no registration survives its
 * handle in the kernel (ghosts, counted as {@code stale_events}), {@code /proc/self/fd} back to
 * the starting set ({@code leaked_fds}), and no reactor thread alive.
 */
final class RandomSchedule {
    /**
     * How big a round is.
     *
     * @param seed the seed of every random choice
     * @param workers threads driving operations
     * @param opsPerWorker operations per thread
     * @param slots handles live at once (a displaced handle is closed)
     * @param maxMillis a worker stops early after this long
     */
    record Config(long seed, int workers, int opsPerWorker, int slots, long maxMillis) {}

    /** The counts of one or more rounds; {@link #line()} is the stress report. */
    record Result(long closes, long staleEvents, long wrongHandle, long doubleCloses, long leakedFds,
                  long callbacksAfterClose, long stuckCloses, long events, long undocumentedRejections,
                  long finishedWithoutOnClose, List<String> failures) {
        boolean clean() {
            return staleEvents == 0 && wrongHandle == 0 && doubleCloses == 0 && leakedFds == 0
                    && callbacksAfterClose == 0 && stuckCloses == 0 && failures.isEmpty();
        }

        Result plus(Result o) {
            List<String> f = new ArrayList<>(failures);
            f.addAll(o.failures);
            return new Result(closes + o.closes, staleEvents + o.staleEvents, wrongHandle + o.wrongHandle,
                    doubleCloses + o.doubleCloses, leakedFds + o.leakedFds, callbacksAfterClose + o.callbacksAfterClose,
                    stuckCloses + o.stuckCloses, events + o.events, undocumentedRejections + o.undocumentedRejections,
                    finishedWithoutOnClose + o.finishedWithoutOnClose, f);
        }

        static Result empty() {
            return new Result(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, List.of());
        }

        String line() {
            return "closes=" + closes + " stale_events=" + staleEvents + " wrong_handle=" + wrongHandle
                    + " double_closes=" + doubleCloses + " leaked_fds=" + leakedFds
                    + " callbacks_after_close=" + callbacksAfterClose + " stuck_closes=" + stuckCloses;
        }
    }

    /** A reference some party promised to drop, and what tells the janitor that party never will. */
    private record Promise(Tracked.HeldRef ref, ScheduledTask timer, Tracked parker) {
        boolean broken() {
            // A timer cancelled at shutdown never runs (documented, observable by isCancelled);
            // an onClose that never ran (its reactor had exited) never drops what was parked on it.
            // (A close future completes after onClose has returned, so once it is done, a ref
            // still parked was never dropped by it and never will be.)
            return (timer != null && timer.isCancelled())
                    || (parker != null && parker.handle.closeFuture().isDone());
        }
    }

    private static final AtomicInteger ROUNDS = new AtomicInteger();
    private static final int MAX_FAILURES = 20;

    final Config config;
    final String prefix = "rs" + ROUNDS.incrementAndGet() + "-";
    final LongAdder staleEvents = new LongAdder();
    final LongAdder wrongHandle = new LongAdder();
    final LongAdder doubleCloses = new LongAdder();
    final LongAdder leakedFds = new LongAdder();
    final LongAdder callbacksAfterClose = new LongAdder();
    final LongAdder eventsSeen = new LongAdder();
    /** {@code RejectedExecutionException} from {@code Handle.interest}, which documents only ClosedHandleException. */
    final LongAdder undocumentedRejections = new LongAdder();
    private final ConcurrentLinkedQueue<String> failures = new ConcurrentLinkedQueue<>();
    private final AtomicInteger failureCount = new AtomicInteger();
    final AtomicLong ids = new AtomicLong(1);
    final AtomicReferenceArray<Tracked> slots;
    final ConcurrentLinkedQueue<Tracked> all = new ConcurrentLinkedQueue<>();
    private final ConcurrentLinkedQueue<Promise> promises = new ConcurrentLinkedQueue<>();
    final AtomicBoolean groupClosing = new AtomicBoolean();
    ReactorGroup group;

    private RandomSchedule(Config config) {
        this.config = config;
        this.slots = new AtomicReferenceArray<>(config.slots());
    }

    /** Runs one round. */
    static Result run(Config config) throws Exception {
        return new RandomSchedule(config).go();
    }

    void failure(String what) {
        if (failureCount.incrementAndGet() <= MAX_FAILURES) {
            failures.add(what);
        }
    }

    /** {@return a random live slot's tracked handle, or null} Any thread, with the caller's generator. */
    Tracked randomLive(RandomGenerator rnd) {
        return slots.get(rnd.nextInt(slots.length()));
    }

    /** Closes a random slot's handle (never blocking: callers include reactor threads). */
    void closeRandom(RandomGenerator rnd) {
        Tracked t = randomLive(rnd);
        if (t != null && t.handle != null) {
            t.handle.close();
        }
    }

    /** {@code ref} will be dropped by a timer; if the timer never runs, the janitor drops it. */
    void promiseByTimer(Tracked.HeldRef ref, ScheduledTask timer) {
        promises.add(new Promise(ref, timer, null));
    }

    /** {@code ref} will be dropped by {@code parker}'s onClose; if that never runs, the janitor drops it. */
    void promiseByOnClose(Tracked.HeldRef ref, Tracked parker) {
        promises.add(new Promise(ref, null, parker));
    }

    private Result go() throws Exception {
        FdSnapshot before = FdSnapshot.take();
        SplittableGenerator master = RandomGeneratorFactory.<SplittableGenerator>of("L64X128MixRandom").create(config.seed());
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix(prefix));
        // The plan: which worker closes the group, after how many of its operations, and how (or never).
        int closer = master.nextInt(config.workers());
        // Not in the first tenth: a group closed before the workers got going leaves a round that
        // closed almost nothing, which the test rightly calls vacuous (ShutdownRaceTest and
        // CloseEdgesTest cover a shutdown racing the first registrations).
        int tenth = config.opsPerWorker() / 10;
        int closeAt = master.nextInt(4) == 0 ? -1 : tenth + master.nextInt(config.opsPerWorker() - tenth);
        int closeHow = master.nextInt(4);
        var start = new CountDownLatch(1);
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(config.maxMillis());
        List<ScheduleWorker> workers = new ArrayList<>();
        List<Thread> threads = new ArrayList<>();
        for (int i = 0; i < config.workers(); i++) {
            var w = new ScheduleWorker(this, i, master.split(), i == closer ? closeAt : -1, closeHow, deadline);
            workers.add(w);
            threads.add(Thread.ofPlatform().name(prefix + "worker-" + i).start(() -> w.run(start)));
        }
        var janitorStop = new AtomicBoolean();
        Thread janitor = Thread.ofPlatform().name(prefix + "janitor").start(() -> janitor(janitorStop));
        // Half the rounds, signals as a fault source too: every EINTR must be a non-event.
        Thread signaller = master.nextBoolean() ? signaller(janitorStop) : null;
        start.countDown();
        for (Thread t : threads) {
            t.join(TimeUnit.MILLISECONDS.toMillis(config.maxMillis()) + 60_000);
            if (t.isAlive()) {
                failure("worker " + t.getName() + " never finished: " + List.of(t.getStackTrace()));
            }
        }
        long closeDeadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        if (!groupClosing.get()) {
            // Every handle closed with the group still running: no registration may be left in
            // either epoll (the dups the workers still hold would keep a skipped DEL alive).
            all.forEach(t -> t.handle.closeAsync());
            if (awaitCloses(closeDeadline)) {
                for (Reactor r : group.reactors()) {
                    List<Integer> registered = EpollInfo.registeredFds(r.epollFd());
                    if (registered.size() != 1) { // only the wakeup eventfd
                        staleEvents.add(registered.size() - 1);
                        failure("ghost registrations in reactor " + r.index() + ": tfds " + registered);
                    }
                }
            }
        }
        try {
            group.close(Duration.ofSeconds(20));
        } catch (TimeoutException e) {
            failure("group close: " + e.getMessage() + "; " + group.reactors().stream().map(Reactor::stats).toList());
        }
        awaitCloses(closeDeadline);
        workers.forEach(ScheduleWorker::closeDups);
        janitorStop.set(true);
        janitor.join();
        if (signaller != null) {
            signaller.join();
        }
        return result(before);
    }

    /** A thread sending SIGPIPE to a reactor thread every ~0.2 ms until told to stop (or the reactors are gone). */
    private Thread signaller(AtomicBoolean stop) throws Exception {
        int[] tids = new int[group.size()];
        for (int i = 0; i < tids.length; i++) {
            tids[i] = SignalsTest.tidOf(group.reactor(i));
        }
        return Thread.ofPlatform().name(prefix + "signaller").start(() -> {
            for (long n = 0; !stop.get(); n++) {
                int i = (int) (n % tids.length);
                if (group.reactor(i).thread().isAlive()) { // a tid is reused once its thread ended
                    io.quiesce.testing.Signals.tgkill(tids[i], io.quiesce.testing.Signals.SIGPIPE);
                }
                java.util.concurrent.locks.LockSupport.parkNanos(200_000);
            }
        });
    }

    /** Drops the references whose promised release can no longer happen, until told to stop. */
    private void janitor(AtomicBoolean stop) {
        while (!stop.get()) {
            for (var it = promises.iterator(); it.hasNext(); ) {
                Promise p = it.next();
                if (p.ref().isDropped()) {
                    it.remove();
                } else if (p.broken()) {
                    p.ref().release();
                    it.remove();
                }
            }
            java.util.concurrent.locks.LockSupport.parkNanos(500_000);
        }
    }

    private boolean awaitCloses(long deadlineNanos) throws InterruptedException {
        while (System.nanoTime() - deadlineNanos < 0) {
            if (all.stream().allMatch(t -> t.handle.closeFuture().isDone())) {
                return true;
            }
            Thread.sleep(2);
        }
        return false;
    }

    private Result result(FdSnapshot before) throws InterruptedException {
        long closes = 0;
        long stuck = 0;
        long withoutOnClose = 0;
        for (Tracked t : all) {
            if (t.handle.closeFuture().isDone()) {
                closes++;
                if (t.onCloses.get() == 0) {
                    withoutOnClose++; // finished by a closing thread after its reactor exited
                }
                if (t.uniqueIdentity() && t.stillNamesMyFile()) {
                    leakedFds.increment();
                    failure("closed, yet fd " + t.fd + " still names " + t.identity + ": " + t);
                }
            } else {
                stuck++;
                failure("stuck close: " + t + " on reactor " + t.handle.reactor().index());
            }
        }
        for (Reactor r : group.reactors()) {
            long errors = r.stats().get(Counter.CLOSE_ERRORS);
            if (errors > 0) {
                doubleCloses.add(errors);
                failure("reactor " + r.index() + " close(fd) errors: " + r.stats());
            }
            // Every fd here is the caller's, so every close issues the DEL: an event with a stale
            // token can only be one fetched in the batch that closed its handle, at most one per
            // handle. More means a registration outlived its handle (a dup kept it alive).
            long stale = r.stats().get(Counter.STALE_EVENTS_DROPPED);
            long registered = r.stats().get(Counter.HANDLES_REGISTERED);
            if (stale > registered) {
                staleEvents.add(stale - registered);
                failure("reactor " + r.index() + " dropped " + stale + " stale events for " + registered + " handles: " + r.stats());
            }
            if (r.stats().get(Counter.HANDLER_FAILURES) > 0) { // the handlers here never throw
                failure("reactor " + r.index() + " saw handlers throw: " + r.stats());
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
        return new Result(closes, staleEvents.sum(), wrongHandle.sum(), doubleCloses.sum(), leakedFds.sum(),
                callbacksAfterClose.sum(), stuck, eventsSeen.sum(), undocumentedRejections.sum(), withoutOnClose,
                List.copyOf(failures));
    }
}
