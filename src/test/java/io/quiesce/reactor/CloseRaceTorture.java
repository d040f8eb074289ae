package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.FdSnapshot;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReferenceArray;
import java.util.concurrent.atomic.LongAdder;

/**
 * The close-race torture: handles are closed from many threads while their fds fire events and
 * new fds take over the freed numbers at once.
 *
 * <p>Each live pair is a pipe: the read end registered edge-triggered, the write end registered
 * with no interest, both as handles. Writer threads write the pair's 8-byte id into the write end
 * while holding a reference to its handle; the reader's handler drains the read end and checks
 * every id it reads. Closer threads close random pairs and immediately open new ones, so fd numbers
 * are reused while events for the old ones may still be queued. If the close protocol let a stale
 * event, a late write or a second close reach a reused fd number, it would show as:
 *
 * <ul>
 *   <li>{@code wrong_handle}: a reader read an id that is not its pair's;</li>
 *   <li>{@code stale_events}: a handler ran after the reactor had processed its close (DEL);</li>
 *   <li>{@code callbacks_after_close}: a handler ran after the close future completed;</li>
 *   <li>{@code double_closes}: an {@code onClose} ran twice, or {@code close(fd)} failed;</li>
 *   <li>{@code leaked_fds}: sockets, pipes or anon inodes left open after the group closed.</li>
 * </ul>
 */
final class CloseRaceTorture {
    record Result(long closes, long staleEvents, long wrongHandle, long doubleCloses, long leakedFds,
                  long callbacksAfterClose, long eventsDispatched, long staleDropped) {
        boolean clean() {
            return staleEvents == 0 && wrongHandle == 0 && doubleCloses == 0 && leakedFds == 0
                    && callbacksAfterClose == 0;
        }

        String line() {
            return "closes=" + closes + " stale_events=" + staleEvents + " wrong_handle=" + wrongHandle
                    + " double_closes=" + doubleCloses + " leaked_fds=" + leakedFds
                    + " callbacks_after_close=" + callbacksAfterClose;
        }
    }

    private record Pair(long id, Handle reader, Handle writer) {}

    private static final int WINDOW = 64;

    private final LongAdder closes = new LongAdder();
    private final LongAdder staleEvents = new LongAdder();
    private final LongAdder wrongHandle = new LongAdder();
    private final LongAdder doubleCloses = new LongAdder();
    private final LongAdder callbacksAfterClose = new LongAdder();
    private final AtomicLong ids = new AtomicLong(1);
    private ReactorGroup group;

    /**
     * Runs until {@code targetCloses} handles have been closed.
     *
     * @param targetCloses handles to close in all (readers and writers both count)
     * @param slots live pairs at any time
     * @param closers threads closing and reopening pairs
     * @param writers threads writing into live pairs
     */
    static Result run(long targetCloses, int slots, int closers, int writers, int reactors) throws Exception {
        return new CloseRaceTorture().go(targetCloses, slots, closers, writers, reactors);
    }

    private Result go(long targetCloses, int slots, int closers, int writers, int reactors) throws Exception {
        FdSnapshot before = FdSnapshot.take();
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(reactors)
                .withThreadNamePrefix("torture-reactor-"));
        var live = new AtomicReferenceArray<Pair>(slots);
        for (int i = 0; i < slots; i++) {
            live.set(i, open());
        }
        var stop = new java.util.concurrent.atomic.AtomicBoolean();
        var start = new CountDownLatch(1);
        var failures = new java.util.concurrent.CopyOnWriteArrayList<Throwable>();
        var closeRequests = new AtomicLong();
        List<Thread> threads = new ArrayList<>();
        for (int w = 0; w < writers; w++) {
            threads.add(Thread.ofPlatform().name("torture-writer-" + w).start(() -> {
                try (Arena arena = Arena.ofConfined()) {
                    Syscalls sys = new Syscalls(arena);
                    MemorySegment buf = arena.allocate(8);
                    start.await();
                    var rnd = ThreadLocalRandom.current();
                    while (!stop.get()) {
                        Pair p = live.get(rnd.nextInt(slots));
                        if (p.writer().tryRetain()) { // the fd cannot be released while we write
                            try {
                                buf.set(ValueLayout.JAVA_LONG, 0, p.id());
                                long r = sys.write(p.writer().fd(), buf, 8);
                                if (r < 0 && r != -Errno.EAGAIN && r != -Errno.EPIPE) {
                                    throw new AssertionError("write: " + Errno.name((int) -r));
                                }
                            } finally {
                                p.writer().release();
                            }
                        }
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }));
        }
        for (int c = 0; c < closers; c++) {
            threads.add(Thread.ofPlatform().name("torture-closer-" + c).start(() -> {
                try {
                    start.await();
                    var rnd = ThreadLocalRandom.current();
                    // Closes complete asynchronously; waiting on the one made WINDOW closes ago
                    // bounds the fds in flight without serialising the closer on its own close.
                    var inFlight = new java.util.ArrayDeque<java.util.concurrent.CompletableFuture<Void>>();
                    while (closeRequests.addAndGet(2) <= targetCloses + 1) {
                        int i = rnd.nextInt(slots);
                        Pair old = live.get(i);
                        Pair fresh = open(); // likely takes fd numbers just released
                        Pair victim = live.compareAndSet(i, old, fresh) ? old : fresh; // lost the slot: close ours
                        victim.reader().close();
                        inFlight.add(victim.writer().closeAsync());
                        if (inFlight.size() > WINDOW) {
                            inFlight.poll().get(60, java.util.concurrent.TimeUnit.SECONDS);
                        }
                    }
                } catch (Throwable t) {
                    failures.add(t);
                }
            }));
        }
        start.countDown();
        for (Thread t : threads.subList(writers, threads.size())) {
            t.join();
        }
        stop.set(true);
        for (Thread t : threads) {
            t.join();
        }
        long dispatched = 0;
        long dropped = 0;
        long closeErrors = 0;
        for (Reactor r : group.reactors()) {
            dispatched += r.stats().get(Counter.EVENTS_DISPATCHED);
            dropped += r.stats().get(Counter.STALE_EVENTS_DROPPED);
        }
        group.close(Duration.ofSeconds(30));
        for (Reactor r : group.reactors()) {
            closeErrors += r.stats().get(Counter.CLOSE_ERRORS);
        }
        if (!failures.isEmpty()) {
            var e = new AssertionError("torture thread failed");
            failures.forEach(e::addSuppressed);
            throw e;
        }
        long leaked = 0;
        for (int i = 0; i < 100; i++) {
            leaked = FdSnapshot.take().newSince(before).size();
            if (leaked == 0) {
                break;
            }
            Thread.sleep(20);
        }
        return new Result(closes.sum(), staleEvents.sum(), wrongHandle.sum(), doubleCloses.sum() + closeErrors,
                leaked, callbacksAfterClose.sum(), dispatched, dropped);
    }

    private Pair open() {
        int[] fds = new int[2];
        int r = TestSyscalls.current().pipe(fds, TestSyscalls.O_NONBLOCK);
        if (r < 0) {
            throw new IllegalStateException("pipe2: " + Errno.name(-r));
        }
        long id = ids.getAndIncrement();
        Reactor reactor = group.next();
        Handle reader = reactor.register(fds[0], Interest.READ, new Checker(id));
        Handle writer = reactor.register(fds[1], 0, new Checker(id));
        return new Pair(id, reader, writer);
    }

    /** Drains the read end and checks each id; counts protocol violations. */
    private final class Checker implements EventHandler {
        private final long id;
        private final AtomicInteger onCloses = new AtomicInteger();

        Checker(long id) {
            this.id = id;
        }

        @Override
        public void onEvent(Handle h, int ready) {
            if (h.registration.closeProcessed()) {
                staleEvents.increment();
            }
            if (h.closeFuture().isDone()) {
                callbacksAfterClose.increment();
            }
            if ((ready & Interest.READ) == 0) {
                return;
            }
            MemorySegment buf = READ_BUFFER.get();
            Syscalls sys = Syscalls.current();
            while (true) {
                long n = sys.read(h.fd(), buf, buf.byteSize());
                if (n <= 0) {
                    return; // EAGAIN (drained) or EOF (the writer closed)
                }
                for (long off = 0; off + 8 <= n; off += 8) {
                    if (buf.get(ValueLayout.JAVA_LONG, off) != id) {
                        wrongHandle.increment();
                    }
                }
            }
        }

        @Override
        public void onClose(Handle h, Throwable cause) {
            closes.increment();
            if (onCloses.incrementAndGet() > 1) {
                doubleCloses.increment();
            }
        }
    }

    private static final ThreadLocal<MemorySegment> READ_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(4096));
}
