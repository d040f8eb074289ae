package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

@ExtendWith(NoFdLeaks.class)
class ReactorTest {
    private ReactorGroup group;
    private Reactor reactor;
    private final Syscalls sys = Syscalls.current();

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
        reactor = group.reactor(0);
    }

    @AfterEach
    void stop() throws Exception {
        group.close(Duration.ofSeconds(20));
    }

    @Test
    void anEventfdWrittenByAnotherThreadReachesItsHandler() throws Exception {
        var seen = new CountDownLatch(1);
        var ready = new AtomicInteger();
        var thread = new AtomicReference<Thread>();
        Handle h = reactor.register(eventfd(), Interest.READ, (handle, r) -> {
            ready.set(r);
            thread.set(Thread.currentThread());
            seen.countDown();
        });
        roundTrips(reactor, 1); // registered
        assertEquals(8, sys.eventfdWrite(h.fd(), 1));
        await(seen);
        assertEquals(Interest.READ, ready.get() & Interest.READ);
        assertTrue(reactor.stats().get(Counter.CTL_ADD) >= 1);
        onReactor(reactor, () -> assertSame(thread.get(), Thread.currentThread(), "handler ran on the reactor"));
        h.close(Duration.ofSeconds(10));
        assertFalse(h.isOpen());
    }

    @Test
    void foreignCloseReleasesTheFdOnceAndNoHandlerRunsAfter() throws Exception {
        var closes = new AtomicInteger();
        var eventsAfterClose = new AtomicInteger();
        var handleRef = new AtomicReference<Handle>();
        Handle h = reactor.register(eventfd(), Interest.READ | Interest.LEVEL, new EventHandler() {
            @Override public void onEvent(Handle handle, int ready) {
                if (handle.closeFuture().isDone()) {
                    eventsAfterClose.incrementAndGet();
                }
            }
            @Override public void onClose(Handle handle, Throwable cause) {
                assertNull(cause);
                closes.incrementAndGet();
            }
        });
        handleRef.set(h);
        sys.eventfdWrite(h.fd(), 1); // level-triggered and never drained: fires every iteration
        eventually("events dispatched", () -> reactor.stats().get(Counter.EVENTS_DISPATCHED) > 3);
        h.closeAsync().get(10, TimeUnit.SECONDS);
        h.close(); // idempotent
        h.closeAsync().get(10, TimeUnit.SECONDS);
        roundTrips(reactor, 3);
        assertEquals(1, closes.get());
        assertEquals(0, eventsAfterClose.get());
        assertEquals(1, reactor.stats().get(Counter.CLOSES_COMPLETED));
        assertEquals(1, reactor.stats().get(Counter.CTL_DEL), "a shared fd is DEL'd before close");
        assertThrows(ClosedHandleException.class, () -> h.interest(Interest.WRITE));
        assertFalse(h.tryRetain());
    }

    @Test
    void aHeldReferenceDelaysTheReleaseUntilItIsDropped() throws Exception {
        Handle h = reactor.register(eventfd(), Interest.READ, (handle, r) -> {});
        assertTrue(h.tryRetain());
        h.close();
        roundTrips(reactor, 4);
        assertFalse(h.closeFuture().isDone(), "released while a syscall could still be in flight");
        assertEquals(8, sys.eventfdWrite(h.fd(), 1), "the fd is still ours while the reference is held");
        h.release();
        h.closeFuture().get(10, TimeUnit.SECONDS);
        assertEquals(0, h.references());
    }

    @Test
    void dupSeedClosingTheHandleLeavesNoGhostRegistrationAndTheDupWorks() throws Exception {
        // epoll-dup-shutdown-close.txt / epoll-semantics-ofd-dup-fork.txt: epoll watches the open
        // file description; without DEL a dup would keep the closed fd's registration firing.
        var events = new AtomicInteger();
        Handle h = reactor.register(eventfd(), Interest.READ | Interest.LEVEL, (handle, r) -> events.incrementAndGet());
        int dup = TestSyscalls.current().dup(h.fd());
        assertTrue(dup >= 0);
        try {
            roundTrips(reactor, 1);
            h.close(Duration.ofSeconds(10));
            int before = events.get();
            long staleBefore = reactor.stats().get(Counter.STALE_EVENTS_DROPPED);
            assertEquals(8, sys.eventfdWrite(dup, 7), "the dup still works");
            roundTrips(reactor, 5);
            assertEquals(before, events.get(), "no event for the closed handle");
            assertEquals(staleBefore, reactor.stats().get(Counter.STALE_EVENTS_DROPPED),
                    "not even a dropped one: the kernel no longer has the registration");
            assertEquals(7, TestSyscalls.current().eventfdRead(dup));
        } finally {
            sys.close(dup);
        }
    }

    @Test
    void aHandlerThatThrowsClosesOnlyItsOwnHandle() throws Exception {
        var cause = new AtomicReference<Throwable>();
        var good = new AtomicInteger();
        Handle bad = reactor.register(eventfd(), Interest.READ, new EventHandler() {
            @Override public void onEvent(Handle handle, int ready) {
                throw new IllegalStateException("boom");
            }
            @Override public void onClose(Handle handle, Throwable c) {
                cause.set(c);
            }
        });
        Handle ok = reactor.register(eventfd(), Interest.READ, (handle, r) -> {
            TestSyscalls.current().eventfdRead(handle.fd());
            good.incrementAndGet();
        });
        roundTrips(reactor, 1);
        sys.eventfdWrite(bad.fd(), 1);
        bad.closeFuture().get(10, TimeUnit.SECONDS);
        assertEquals("boom", cause.get().getMessage());
        sys.eventfdWrite(ok.fd(), 1);
        eventually("the other handle still served", () -> good.get() == 1);
        assertTrue(ok.isOpen());
        assertEquals(1, reactor.stats().get(Counter.HANDLER_FAILURES));
        ok.close(Duration.ofSeconds(10));
    }

    @Test
    void moreReadyFdsThanTheEventsArrayAreAllServedWithoutStarvation() throws Exception {
        group.close();
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withEvents(4, 4));
        reactor = group.reactor(0);
        int n = 50;
        var perFd = new ConcurrentHashMap<Integer, AtomicInteger>();
        List<Handle> handles = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            // Level-triggered and never drained: each fd stays ready forever, so a reactor that
            // always served the first four would starve the other 46.
            Handle h = reactor.register(eventfd(), Interest.READ | Interest.LEVEL,
                    (handle, r) -> perFd.computeIfAbsent(handle.fd(), k -> new AtomicInteger()).incrementAndGet());
            handles.add(h);
            sys.eventfdWrite(h.fd(), 1);
        }
        eventually("every ready fd served", () -> perFd.size() == n);
        for (Handle h : handles) {
            h.close();
        }
        for (Handle h : handles) {
            h.closeFuture().get(10, TimeUnit.SECONDS);
        }
    }

    @Test
    void theEventsArrayGrowsWhenACallFillsIt() throws Exception {
        group.close();
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withEvents(2, 64));
        reactor = group.reactor(0);
        var served = new AtomicInteger();
        List<Handle> handles = new ArrayList<>();
        for (int i = 0; i < 40; i++) {
            handles.add(reactor.register(eventfd(), Interest.READ, (h, r) -> served.incrementAndGet()));
        }
        roundTrips(reactor, 1);
        onReactor(reactor, () -> { // all 40 ready before the reactor's next epoll_wait
            for (Handle h : handles) {
                Syscalls.current().eventfdWrite(h.fd(), 1);
            }
        });
        eventually("all 40 served", () -> served.get() == 40);
        assertTrue(reactor.stats().get(Counter.EVENT_ARRAY_GROWTHS) >= 1);
        handles.forEach(Handle::close);
    }

    @Test
    void oneshotFiresOnceUntilRearmed() throws Exception {
        var count = new AtomicInteger();
        Handle h = reactor.register(eventfd(), Interest.READ | Interest.ONESHOT | Interest.LEVEL,
                (handle, r) -> count.incrementAndGet());
        sys.eventfdWrite(h.fd(), 1); // stays readable: never drained
        eventually("first event", () -> count.get() == 1);
        roundTrips(reactor, 10);
        assertEquals(1, count.get(), "disabled after firing");
        h.rearm();
        eventually("fires again after rearm", () -> count.get() == 2);
        roundTrips(reactor, 10);
        assertEquals(2, count.get());
        h.close();
    }

    @Test
    void edgeTriggeredFiresOnNewEdgesLevelTriggeredWhileReady() throws Exception {
        var edge = new AtomicInteger();
        var level = new AtomicInteger();
        Handle et = reactor.register(eventfd(), Interest.READ, (h, r) -> edge.incrementAndGet());
        Handle lt = reactor.register(eventfd(), Interest.READ | Interest.LEVEL, (h, r) -> level.incrementAndGet());
        sys.eventfdWrite(et.fd(), 1);
        sys.eventfdWrite(lt.fd(), 1);
        eventually("both fire", () -> edge.get() == 1 && level.get() >= 1);
        roundTrips(reactor, 10);
        assertEquals(1, edge.get(), "edge-triggered: no new edge, no new event");
        assertTrue(level.get() >= 5, "level-triggered: reported again while readable, got " + level.get());
        sys.eventfdWrite(et.fd(), 1);
        eventually("a new edge", () -> edge.get() == 2);
        et.close();
        lt.close();
    }

    @Test
    void addThenCloseInOneIterationCostsNoEpollCtl() {
        var stats = reactor.stats();
        long issued = stats.ctlIssued();
        long savedAdd = stats.get(Counter.CTL_ADD_SAVED);
        long savedDel = stats.get(Counter.CTL_DEL_SAVED);
        var handles = new ArrayList<Handle>();
        onReactor(reactor, () -> {
            Handle h = reactor.register(eventfd(), Interest.READ, (x, r) -> {});
            h.close();
            handles.add(h);
        });
        roundTrips(reactor, 2);
        assertTrue(handles.getFirst().closeFuture().isDone(), () -> handles.getFirst() + " " + reactor.stats());
        assertEquals(issued, stats.ctlIssued(), "neither ADD nor DEL reached the kernel");
        assertEquals(savedAdd + 1, stats.get(Counter.CTL_ADD_SAVED));
        assertEquals(savedDel + 1, stats.get(Counter.CTL_DEL_SAVED));
    }

    @Test
    void severalInterestChangesInOneIterationCostOneModAndASameMaskModCostsNone() {
        Handle h = reactor.register(eventfd(), Interest.READ, (x, r) -> {});
        roundTrips(reactor, 1);
        var stats = reactor.stats();
        long mods = stats.get(Counter.CTL_MOD);
        long saved = stats.get(Counter.CTL_MOD_SAVED);
        onReactor(reactor, () -> {
            h.interest(Interest.WRITE);
            h.interest(Interest.READ | Interest.WRITE);
            h.interest(Interest.WRITE | Interest.PEER_CLOSED);
        });
        roundTrips(reactor, 1);
        assertEquals(mods + 1, stats.get(Counter.CTL_MOD), "three changes, one MOD");
        assertEquals(saved + 2, stats.get(Counter.CTL_MOD_SAVED));
        onReactor(reactor, () -> h.interest(Interest.WRITE | Interest.PEER_CLOSED));
        roundTrips(reactor, 1);
        assertEquals(mods + 1, stats.get(Counter.CTL_MOD), "same mask: no MOD");
        assertEquals(saved + 3, stats.get(Counter.CTL_MOD_SAVED));
        h.close();
    }

    @Test
    void addMeetingEexistBecomesModAndTheHandleWorks() throws Exception {
        int fd = eventfd();
        // Someone already put this fd in the reactor's epoll (with a token the reactor never issued).
        assertEquals(0, sys.epollCtl(reactor.epollFd(), Syscalls.EPOLL_CTL_ADD, fd, Syscalls.EPOLLIN, 0x7777_0000_0000L));
        var seen = new CountDownLatch(1);
        Handle h = reactor.register(fd, Interest.READ, (x, r) -> seen.countDown());
        roundTrips(reactor, 1);
        assertEquals(1, reactor.stats().get(Counter.CTL_EEXIST_AS_MOD));
        sys.eventfdWrite(fd, 1);
        await(seen);
        h.close(Duration.ofSeconds(10));
    }

    @Test
    void modMeetingEnoentBecomesAddAndTheHandleWorks() throws Exception {
        var seen = new CountDownLatch(1);
        Handle h = reactor.register(eventfd(), Interest.WRITE, (x, r) -> {
            if ((r & Interest.READ) != 0) {
                seen.countDown();
            }
        });
        roundTrips(reactor, 1);
        // The registration disappears behind the reactor's back.
        assertEquals(0, sys.epollCtl(reactor.epollFd(), Syscalls.EPOLL_CTL_DEL, h.fd(), 0, 0));
        h.interest(Interest.READ);
        roundTrips(reactor, 2);
        assertEquals(1, reactor.stats().get(Counter.CTL_ENOENT_AS_ADD));
        sys.eventfdWrite(h.fd(), 1);
        await(seen);
        h.close(Duration.ofSeconds(10));
    }

    @Test
    void aReactorPollsAnotherEpollAndItsOwnEpollCanBePolled() throws Exception {
        // batching-epoll-ctl.txt, "Nested Epoll": an epoll fd is readable when it has events.
        int inner = sys.epollCreate();
        int innerEvent = eventfd();
        assertEquals(0, sys.epollCtl(inner, Syscalls.EPOLL_CTL_ADD, innerEvent, Syscalls.EPOLLIN, 1));
        var innerReady = new CountDownLatch(1);
        Handle nested = reactor.register(inner, Interest.READ, (x, r) -> innerReady.countDown());
        roundTrips(reactor, 1);
        sys.eventfdWrite(innerEvent, 1);
        await(innerReady);
        nested.close(Duration.ofSeconds(10));
        sys.close(innerEvent);

        // And the other way round: an outer epoll sees the reactor's epoll become ready.
        int outer = sys.epollCreate();
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            assertEquals(0, sys.epollCtl(outer, Syscalls.EPOLL_CTL_ADD, reactor.epollFd(),
                    Syscalls.EPOLLIN | Syscalls.EPOLLET, 99));
            // Level-triggered and never drained, so the reactor's epoll keeps a ready event when
            // the outer one polls it (epoll re-polls a nested epoll before reporting it).
            Handle h = reactor.register(eventfd(), Interest.READ | Interest.LEVEL, (x, r) -> {});
            roundTrips(reactor, 1);
            sys.eventfdWrite(h.fd(), 1);
            var evs = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * 4);
            assertEquals(1, sys.epollWait(outer, evs, 4, 10_000));
            assertEquals(99, evs.get(Syscalls.U64_UNALIGNED, Syscalls.EPOLL_EVENT_DATA_OFFSET));
            h.close(Duration.ofSeconds(10));
        } finally {
            sys.close(outer);
        }
    }

    @RepeatedTest(5)
    void noWakeupIsLostWhenTasksArriveAsTheReactorParks() throws Exception {
        int threads = 4;
        int perThread = 2_000;
        var start = new CountDownLatch(1);
        var ran = new AtomicInteger();
        var failures = new CopyOnWriteArrayList<Throwable>();
        List<Thread> ts = new ArrayList<>();
        for (int t = 0; t < threads; t++) {
            ts.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                    for (int i = 0; i < perThread; i++) {
                        // One task at a time, each waited for: the reactor is idle (about to park
                        // or parked) when the next arrives, the window of the classic race.
                        var done = new CountDownLatch(1);
                        reactor.execute(() -> {
                            ran.incrementAndGet();
                            done.countDown();
                        });
                        if (!done.await(20, TimeUnit.SECONDS)) {
                            throw new AssertionError("task never ran: lost wakeup");
                        }
                    }
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        start.countDown();
        for (Thread t : ts) {
            t.join();
        }
        assertEquals(List.of(), failures);
        assertEquals(threads * perThread, ran.get());
        var stats = reactor.stats();
        assertTrue(stats.wakeupsSent() > 0, "the reactor parked and was woken");
        assertEquals(stats.wakeupsSent() + stats.wakeupsElided(), (long) threads * perThread);
    }

    @Test
    void timersFireInDeadlineOrderAndCancelledOnesNever() throws Exception {
        var order = new CopyOnWriteArrayList<String>();
        var done = new CountDownLatch(1);
        // Deadlines 100 ms apart: each is taken when schedule() is called, so a test thread
        // descheduled between two calls (a loaded 2-core machine) must not reorder them.
        reactor.schedule(400, TimeUnit.MILLISECONDS, () -> order.add("d40"));
        reactor.schedule(100, TimeUnit.MILLISECONDS, () -> order.add("d10"));
        ScheduledTask cancelled = reactor.schedule(200, TimeUnit.MILLISECONDS, () -> order.add("cancelled"));
        reactor.schedule(300, TimeUnit.MILLISECONDS, () -> order.add("d30"));
        reactor.schedule(600, TimeUnit.MILLISECONDS, done::countDown);
        assertTrue(cancelled.cancel());
        assertFalse(cancelled.cancel());
        onReactor(reactor, () -> {
            // Equal deadlines from the same thread keep their order.
            long now = System.nanoTime();
            for (int i = 0; i < 3; i++) {
                int k = i;
                reactor.schedule(0, TimeUnit.NANOSECONDS, () -> order.add("now" + k));
            }
        });
        await(done);
        assertEquals(List.of("now0", "now1", "now2", "d10", "d30", "d40"), order);
        assertThrows(IllegalArgumentException.class, () -> reactor.schedule(-1, TimeUnit.SECONDS, () -> {}));
    }

    @Test
    void cancelledTimersDoNotPileUpInTheHeap() {
        // The idle-timeout pattern: timers far in the future, cancelled long before they fire.
        var scheduled = new ArrayList<ScheduledTask>();
        onReactor(reactor, () -> { // on the reactor thread: each goes into the heap at once
            for (int i = 0; i < 10_000; i++) {
                scheduled.add(reactor.schedule(1, TimeUnit.HOURS, () -> fail("a cancelled timer ran")));
            }
        });
        var queued = new AtomicInteger();
        onReactor(reactor, () -> queued.set(reactor.timersQueued()));
        assertEquals(10_000, queued.get());
        scheduled.forEach(ScheduledTask::cancel); // from another thread
        onReactor(reactor, () -> {
            reactor.schedule(1, TimeUnit.HOURS, () -> {}).cancel(); // the next schedule purges
            queued.set(reactor.timersQueued());
        });
        assertTrue(queued.get() <= 1, "cancelled timers purged, " + queued.get() + " left");
    }

    @Test
    void argumentsAndStateAreCheckedBeforeAnySyscall() throws Exception {
        assertThrows(IllegalArgumentException.class, () -> reactor.register(-1, Interest.READ, (h, r) -> {}));
        assertThrows(IllegalArgumentException.class, () -> reactor.register(0, 1 << 20, (h, r) -> {}));
        assertThrows(NullPointerException.class, () -> reactor.register(0, Interest.READ, null));
        Handle h = reactor.register(eventfd(), Interest.READ, (x, r) -> {});
        assertThrows(IllegalArgumentException.class, () -> h.interest(1 << 20));
        var onThread = new AtomicReference<Throwable>();
        onReactor(reactor, () -> onThread.set(assertThrows(IllegalStateException.class,
                () -> h.close(Duration.ofSeconds(1)))));
        assertTrue(onThread.get().getMessage().contains("deadlock"));
        h.close(Duration.ofSeconds(10));
        assertThrows(ClosedHandleException.class, h::rearm);
    }

    @Test
    void groupCloseClosesEveryHandleAndJoinsEveryThread() throws Exception {
        var g = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("group-close-"));
        var closed = new AtomicInteger();
        List<Handle> handles = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            handles.add(g.next().register(eventfd(), Interest.READ, new EventHandler() {
                @Override public void onEvent(Handle handle, int ready) {}
                @Override public void onClose(Handle handle, Throwable cause) {
                    closed.incrementAndGet();
                }
            }));
        }
        g.close(Duration.ofSeconds(20));
        assertEquals(10, closed.get());
        for (Handle h : handles) {
            assertTrue(h.closeFuture().isDone());
        }
        for (Reactor r : g.reactors()) {
            assertFalse(r.thread().isAlive());
            assertTrue(r.terminationFuture().isDone());
            assertThrows(java.util.concurrent.RejectedExecutionException.class, () -> r.execute(() -> {}));
            assertThrows(ClosedHandleException.class, () -> r.register(0, Interest.READ, (h, x) -> {}));
        }
        assertTrue(Thread.getAllStackTraces().keySet().stream().noneMatch(t -> t.getName().startsWith("group-close-")));
        // NoFdLeaks checks that the epolls, eventfds and handle fds are all gone.
    }

    @Test
    void errnoNamesSurviveIntoTheReactorsErrors() {
        // A registration the kernel refuses (an epoll cannot watch itself) closes the handle with
        // the syscall's error, naming the call, the fd and the errno.
        var cause = new AtomicReference<Throwable>();
        var closed = new CountDownLatch(1);
        int dup = TestSyscalls.current().dup(reactor.epollFd());
        reactor.register(dup, Interest.READ, new EventHandler() {
            @Override public void onEvent(Handle handle, int ready) {}
            @Override public void onClose(Handle handle, Throwable c) {
                cause.set(c);
                closed.countDown();
            }
        });
        await(closed);
        assertTrue(cause.get().getMessage().contains("epoll_ctl"), cause.get().getMessage());
        assertTrue(cause.get().getMessage().contains(Errno.name(Errno.EINVAL)), cause.get().getMessage());
    }
}
