package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * The close promise at its edges: each test is named after a way the promise was broken (a close
 * that never completed, a callback after onClose, a reactor that abandoned its handles...). Every
 * wait is bounded: liveness, not speed.
 */
@ExtendWith(NoFdLeaks.class)
class CloseEdgesTest {
    /**
     * Bound for "completes at all": far above any real close on a loaded machine. The stalls
     * fixed here were unbounded (no wakeup would ever come), except one (below).
     */
    private static final long LIVENESS_SECONDS = 20;
    /** Below the 10 s a blocking group close on a reactor thread used to stall it. */
    private static final long BELOW_THE_OLD_STALL_SECONDS = 5;
    private final Syscalls sys = Syscalls.current();
    private ReactorGroup group;

    private Reactor startOne() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("edge-"));
        return group.reactor(0);
    }

    @AfterEach
    void stop() throws Exception {
        if (group != null) {
            group.close(Duration.ofSeconds(20));
        }
    }

    private static void completes(CompletableFuture<?> f, String what) {
        try {
            f.get(LIVENESS_SECONDS, TimeUnit.SECONDS);
        } catch (java.util.concurrent.TimeoutException e) {
            fail(what + " never completed (stalled until some unrelated wakeup)");
        } catch (Exception e) {
            throw new AssertionError(what, e);
        }
    }

    @Test
    void aCloseChainedFromOnCloseCompletesWithoutAnotherWakeup() throws Exception {
        Reactor r = startOne();
        Handle h2 = r.register(eventfd(), Interest.READ, (h, ready) -> {});
        Handle h1 = r.register(eventfd(), Interest.READ, new EventHandler() {
            @Override public void onEvent(Handle h, int ready) {}
            @Override public void onClose(Handle h, Throwable cause) {
                h2.close(); // the proxy pattern: A's onClose aborts B
            }
        });
        roundTrips(r, 2);
        h1.closeAsync(); // from this (foreign) thread; nothing else will wake the reactor
        completes(h1.closeFuture(), "h1's close");
        completes(h2.closeFuture(), "the close chained from h1's onClose");
        assertFalse(h2.isOpen());
    }

    @Test
    void aCloseChainedFromACloseFutureContinuationCompletes() throws Exception {
        Reactor r = startOne();
        Handle h2 = r.register(eventfd(), Interest.READ, (h, ready) -> {});
        Handle h1 = r.register(eventfd(), Interest.READ, (h, ready) -> {});
        h1.closeFuture().thenRun(h2::close); // runs on the reactor thread, inside the release
        roundTrips(r, 2);
        h1.closeAsync();
        completes(h2.closeFuture(), "the close chained from h1's close future");
    }

    @Test
    void aLastReferenceDroppedInsideOnCloseCompletesThatClose() throws Exception {
        Reactor r = startOne();
        Handle h2 = r.register(eventfd(), Interest.READ, (h, ready) -> {});
        assertTrue(h2.tryRetain());
        Handle h1 = r.register(eventfd(), Interest.READ, new EventHandler() {
            @Override public void onEvent(Handle h, int ready) {}
            @Override public void onClose(Handle h, Throwable cause) {
                h2.release(); // the last reference, dropped on the reactor thread
            }
        });
        roundTrips(r, 2);
        h2.closeAsync(); // waits for the reference
        roundTrips(r, 2);
        assertFalse(h2.closeFuture().isDone(), "a held reference must delay the release");
        h1.closeAsync();
        completes(h1.closeFuture(), "h1's close");
        completes(h2.closeFuture(), "the close whose last reference dropped inside onClose");
    }

    @Test
    void aCloseInsideOnEventOfAnotherHandleAndItsOwnCompleteInTheSameBatch() throws Exception {
        Reactor r = startOne();
        int fdA = eventfd();
        Handle b = r.register(eventfd(), Interest.READ, (h, ready) -> {});
        var aRef = new AtomicReference<Handle>();
        aRef.set(r.register(fdA, Interest.READ, (h, ready) -> {
            b.close();
            h.close();
        }));
        roundTrips(r, 1);
        sys.eventfdWrite(fdA, 1);
        completes(aRef.get().closeFuture(), "a close from its own onEvent");
        completes(b.closeFuture(), "a close of another handle from onEvent");
    }

    /**
     * {@code epoll-dup-shutdown-close.txt}: a public way to register that skips the DEL would let a
     * user's dup keep a closed handle's registration alive; a level-triggered readable fd then
     * floods the reactor with stale events. Every public registration must DEL.
     */
    @Test
    void noPublicRegistrationSkipsTheDelSoAUserDupCannotSpinTheReactor() throws Exception {
        Reactor r = startOne();
        List<Method> registrations = new ArrayList<>();
        for (Method m : Reactor.class.getMethods()) {
            if (m.getName().startsWith("register") && Modifier.isPublic(m.getModifiers())) {
                registrations.add(m);
            }
        }
        assertFalse(registrations.isEmpty());
        for (Method m : registrations) {
            int fd = eventfd();
            sys.eventfdWrite(fd, 1); // readable, and stays so: level-triggered
            Handle h = (Handle) m.invoke(r, fd, Interest.READ | Interest.LEVEL, (EventHandler) (x, ready) -> {});
            roundTrips(r, 1);
            int dup = TestSyscalls.current().dup(fd); // the user's dup keeps the open file description alive
            assertTrue(dup >= 0);
            long stale = r.stats().get(Counter.STALE_EVENTS_DROPPED);
            long waits = r.stats().get(Counter.EPOLL_WAITS);
            h.close(Duration.ofSeconds(10));
            r.schedule(50, TimeUnit.MILLISECONDS, () -> {}); // let the loop wait a few times
            roundTrips(r, 5);
            long staleAfter = r.stats().get(Counter.STALE_EVENTS_DROPPED) - stale;
            long waitsAfter = r.stats().get(Counter.EPOLL_WAITS) - waits;
            sys.close(dup);
            assertEquals(0, staleAfter, m + ": a ghost registration fired " + staleAfter
                    + " stale events in " + waitsAfter + " waits after the close");
        }
    }

    @Test
    void aSecondLiveHandleForOneFdNumberIsRefused() throws Exception {
        Reactor r = startOne();
        int fd = eventfd();
        Handle first = r.register(fd, Interest.READ, (h, ready) -> {});
        var e = assertThrows(IllegalArgumentException.class, () -> r.register(fd, Interest.WRITE, (h, ready) -> {}));
        assertTrue(e.getMessage().contains("already registered"), e.getMessage());
        first.close(Duration.ofSeconds(10));
        // Once released, the number is free again: a new fd that got it registers normally.
        int again = eventfd();
        Handle second = r.register(again, Interest.READ, (h, ready) -> {});
        second.close(Duration.ofSeconds(10));
        assertEquals(0, r.stats().get(Counter.CLOSE_ERRORS), "no double close");
    }

    @Test
    void groupCloseFromAReactorCallbackReturnsAtOnceAndTheGroupStops() throws Exception {
        Reactor r = startOne();
        var returned = new CountDownLatch(1);
        var refused = new AtomicReference<Throwable>();
        r.execute(() -> {
            try {
                group.close(Duration.ofSeconds(1));
            } catch (Throwable t) {
                refused.set(t);
            }
            group.close(); // must not wait for the very reactor it runs on
            returned.countDown();
        });
        assertTrue(returned.await(BELOW_THE_OLD_STALL_SECONDS, TimeUnit.SECONDS), "group.close() on a reactor thread stalled it");
        assertInstanceOf(IllegalStateException.class, refused.get(), "a blocking close on a reactor thread is refused");
        completes(r.terminationFuture(), "the group's stop");
    }

    @Test
    void timersPendingAtShutdownAreCancelledAndScheduleAfterItIsRejected() throws Exception {
        Reactor r = startOne();
        ScheduledTask pending = r.schedule(1, TimeUnit.HOURS, () -> {});
        roundTrips(r, 1);
        group.close(Duration.ofSeconds(10));
        assertTrue(pending.isCancelled(), "a timer that will never run must say so");
        assertThrows(RejectedExecutionException.class, () -> r.schedule(1, TimeUnit.MILLISECONDS, () -> {}));
    }

    /**
     * A register() whose attach task slips in as the reactor shuts its door, for a handle closed
     * at once from another thread: the closed handle must never enter the table or the kernel
     * (an event after onClose, a reactor that never stops), and onClose runs only on the reactor.
     */
    @RepeatedTest(20)
    void aRegistrationRacingShutdownNeverAttachesAClosedHandle() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("edge-"));
        Reactor r = group.reactor(0);
        var violations = new ConcurrentHashMap<String, String>();
        var closedOnce = ConcurrentHashMap.<Handle>newKeySet();
        var futures = new ConcurrentHashMap<Handle, CompletableFuture<Void>>();
        var stop = new AtomicBoolean();
        var go = new CountDownLatch(1);
        int threads = 2;
        var done = new CountDownLatch(threads);
        for (int t = 0; t < threads; t++) {
            Thread.ofPlatform().start(() -> {
                try {
                    go.await();
                    while (!stop.get()) {
                        int fd = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
                        sys.eventfdWrite(fd, 1); // readable: an ADD after close would fire at once
                        Handle h;
                        try {
                            h = r.register(fd, Interest.READ, new EventHandler() {
                                @Override public void onEvent(Handle x, int ready) {
                                    if (closedOnce.contains(x)) {
                                        violations.put("event after onClose", x.toString());
                                    }
                                }
                                @Override public void onClose(Handle x, Throwable cause) {
                                    if (!closedOnce.add(x)) {
                                        violations.put("onClose twice", x.toString());
                                    }
                                    if (!r.inReactorThread()) {
                                        violations.put("onClose off the reactor thread", Thread.currentThread().getName());
                                    }
                                }
                            });
                        } catch (ClosedHandleException e) {
                            sys.close(fd); // refused: still ours
                            break;
                        }
                        futures.put(h, h.closeFuture());
                        h.close();
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                } finally {
                    done.countDown();
                }
            });
        }
        go.countDown();
        Thread.sleep(2);
        CompletableFuture<Void> stopped = group.closeAsync();
        completes(stopped, "the group's stop (a closed handle stuck in the table?)");
        stop.set(true);
        assertTrue(done.await(20, TimeUnit.SECONDS));
        for (var e : futures.entrySet()) {
            completes(e.getValue(), "close of " + e.getKey());
        }
        assertEquals(java.util.Map.of(), violations);
        assertEquals(0, r.stats().get(Counter.CLOSE_ERRORS), "no double close");
    }

    /**
     * A reactor whose loop throws (here: its epoll fd replaced behind its back, so epoll_wait
     * fails with EINVAL) must still close every handle it owns and complete their futures, and
     * finish the closes whose references outlive it, from whichever thread drops them.
     */
    @Test
    void aReactorWhoseLoopFailsStillClosesEveryHandle() throws Throwable {
        Reactor r = startOne();
        var onCloseThreads = new ConcurrentHashMap<Handle, String>();
        var causes = new ConcurrentHashMap<Handle, String>();
        EventHandler recorder = new EventHandler() {
            @Override public void onEvent(Handle h, int ready) {}
            @Override public void onClose(Handle h, Throwable cause) {
                onCloseThreads.put(h, Thread.currentThread().getName());
                causes.put(h, String.valueOf(cause));
            }
        };
        List<Handle> handles = new ArrayList<>();
        for (int i = 0; i < 5; i++) {
            handles.add(r.register(eventfd(), Interest.READ, recorder));
        }
        Handle held = r.register(eventfd(), Interest.READ, recorder);
        assertTrue(held.tryRetain());
        roundTrips(r, 2);

        int notEpoll = eventfd();
        assertEquals(r.epollFd(), dup2(notEpoll, r.epollFd()), "dup2 over the epoll fd");
        sys.close(notEpoll);
        nudgeUntilStopped(r); // wake it: the next wait fails

        var failed = r.terminationFuture().handle((v, t) -> t);
        completes(failed, "the failed reactor's stop");
        assertNotNull(failed.get(), "the termination future reports the failure");
        for (Handle h : handles) {
            completes(h.closeFuture(), "close of " + h + " owned by the failed reactor");
            assertFalse(h.isOpen());
            assertTrue(onCloseThreads.get(h).startsWith("edge-"), "onClose on the reactor thread: " + onCloseThreads.get(h));
            assertTrue(causes.get(h).contains("failed"), causes.get(h));
        }
        assertFalse(held.closeFuture().isDone(), "a held reference delays even this close");
        held.release(); // from this thread, after the reactor is gone
        completes(held.closeFuture(), "the close finished by its last release");
        assertNull(onCloseThreads.get(held), "no user callback on a foreign thread");
        int late = eventfd();
        assertThrows(ClosedHandleException.class, () -> r.register(late, Interest.READ, recorder));
        sys.close(late); // refused, so still ours
        group.close(Duration.ofSeconds(10)); // returns: the group is stopped
    }

    /**
     * Wakes {@code r} until its loop has failed. The batch backend may still have a wait armed on
     * the old epoll file: a wakeup sent while it is parked there ends it, and the next wait, on
     * the fd now named by the epoll's number, fails. Bounded.
     */
    private static void nudgeUntilStopped(Reactor r) throws InterruptedException {
        UringTesting.wakeUntilStopped(r);
    }

    private static int dup2(int from, int to) throws Throwable {
        Linker linker = Linker.nativeLinker();
        MethodHandle dup2 = linker.downcallHandle(linker.defaultLookup().find("dup2").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        return (int) dup2.invokeExact(from, to);
    }

    @Test
    void aFailedReactorCompletesAClosePendingInItsQueue() throws Throwable {
        Reactor r = startOne();
        Handle h = r.register(eventfd(), Interest.READ, (x, ready) -> {});
        roundTrips(r, 1);
        var gate = new CountDownLatch(1);
        var inTask = new CountDownLatch(1);
        r.execute(() -> {
            inTask.countDown();
            try {
                gate.await(); // hold the loop while the failure is arranged and a close is queued
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        inTask.await();
        int notEpoll = eventfd();
        assertEquals(r.epollFd(), dup2(notEpoll, r.epollFd()));
        sys.close(notEpoll);
        h.closeAsync(); // queued behind the gate; the loop fails right after it
        gate.countDown();
        completes(h.closeFuture(), "a close queued as the reactor failed");
        nudgeUntilStopped(r);
        completes(h.closeFuture(), "a close queued as the reactor failed");
        completes(r.terminationFuture().handle((v, t) -> null), "the failed reactor's stop");
    }

    @Test
    void blockingHandleCloseIsRefusedOnAnyReactorThread() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("edge-"));
        Handle onOther = group.reactor(1).register(eventfd(), Interest.READ, (x, ready) -> {});
        var refused = new AtomicReference<Throwable>();
        onReactor(group.reactor(0), () -> refused.set(assertThrows(IllegalStateException.class,
                () -> onOther.close(Duration.ofSeconds(1)))));
        assertNotNull(refused.get());
        onOther.close(Duration.ofSeconds(10));
    }

    @Test
    void handlesClosedWhileTheirRegistrationIsQueuedCompleteAndNeverFire() throws Exception {
        Reactor r = startOne();
        var events = new AtomicInteger();
        var gate = new CountDownLatch(1);
        r.execute(() -> {
            try {
                gate.await();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
            }
        });
        List<Handle> hs = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            int fd = eventfd();
            sys.eventfdWrite(fd, 1);
            Handle h = r.register(fd, Interest.READ, (x, ready) -> events.incrementAndGet());
            h.close(); // before the reactor ran its attach
            hs.add(h);
        }
        long adds = r.stats().get(Counter.CTL_ADD);
        gate.countDown();
        for (Handle h : hs) {
            completes(h.closeFuture(), "close of " + h);
        }
        roundTrips(r, 2);
        assertEquals(0, events.get());
        assertEquals(adds, r.stats().get(Counter.CTL_ADD), "a handle closed before its attach is never ADDed");
    }
}
