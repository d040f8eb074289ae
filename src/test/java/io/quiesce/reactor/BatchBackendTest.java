package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.EpollBatch;
import io.quiesce.uring.Ring;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The io_uring batch backend as the reactor uses it, and its fallback to plain epoll. */
@ExtendWith(NoFdLeaks.class)
class BatchBackendTest {
    private final Syscalls sys = Syscalls.current();

    private static ReactorGroup start(ReactorGroup.Io io) throws Exception {
        return ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("batch-").withIo(io));
    }

    @Test
    void interestChangesRideOnTheWaitsEnterAndEventsArrive() throws Exception {
        try (ReactorGroup g = start(ReactorGroup.Io.BATCH)) {
            Reactor r = g.reactor(0);
            roundTrips(r, 1);
            assertEquals(ReactorGroup.Io.BATCH, r.io(), "io_uring EPOLL_WAIT is there on this kernel (6.15+)");
            var seen = new CountDownLatch(3);
            Handle[] hs = new Handle[3];
            for (int i = 0; i < hs.length; i++) {
                hs[i] = r.register(eventfd(), Interest.READ, (h, ready) -> seen.countDown());
            }
            roundTrips(r, 2);
            ReactorStats s = r.stats();
            assertEquals(3, s.get(Counter.CTL_BATCHED), "the three ADDs went through the ring");
            assertTrue(s.get(Counter.URING_ENTERS) > 0);
            for (Handle h : hs) {
                sys.eventfdWrite(h.fd(), 1);
            }
            await(seen);
            for (Handle h : hs) {
                h.close(Duration.ofSeconds(10));
            }
        }
    }

    /** The seed's mapping through the ring: an ADD meeting EEXIST becomes a MOD and the handle works. */
    @Test
    void anAddMeetingEexistInTheRingBecomesAMod() throws Exception {
        try (ReactorGroup g = start(ReactorGroup.Io.BATCH)) {
            Reactor r = g.reactor(0);
            int fd = eventfd();
            assertEquals(0, sys.epollCtl(r.epollFd(), Syscalls.EPOLL_CTL_ADD, fd, Syscalls.EPOLLIN, 0x7777_0000_0000L));
            var seen = new CountDownLatch(1);
            Handle h = r.register(fd, Interest.READ, (x, ready) -> seen.countDown());
            roundTrips(r, 2);
            assertEquals(1, r.stats().get(Counter.CTL_EEXIST_AS_MOD));
            sys.eventfdWrite(fd, 1);
            await(seen);
            h.close(Duration.ofSeconds(10));
        }
    }

    /**
     * A round that carries interest changes and then sleeps is one {@code io_uring_enter}: the
     * ops are linked in front of the wait, not handed over by a non-sleeping enter first. The
     * changes are made by an event handler, as an accept makes its connection's ADD (a task's
     * would make the round a poll: the task's own wakeup is still pending). Counted by the
     * reactor itself from that handler to a later task, with the reactor seen asleep in
     * {@code io_uring_enter} (the kernel's {@code /proc/self/task/TID/syscall}) before the task is
     * sent. Both without a timer (the wait has no limit) and with one pending (a finite wait, as
     * the HTTP example's timeouts make it).
     */
    @Test
    void aRoundWithInterestChangesSleepsInTheEnterThatCarriesThem() throws Exception {
        try (ReactorGroup g = start(ReactorGroup.Io.BATCH)) {
            Reactor r = g.reactor(0);
            roundTrips(r, 1);
            assertEquals(ReactorGroup.Io.BATCH, r.io());
            CompletableFuture<Integer> tidF = new CompletableFuture<>();
            r.execute(() -> tidF.complete(io.quiesce.testing.Signals.gettid()));
            int tid = tidF.get(10, TimeUnit.SECONDS);
            List<Handle> handles = new java.util.ArrayList<>();
            long[] at = new long[3];
            var triggered = new java.util.concurrent.Semaphore(0);
            Handle trigger = r.register(eventfd(), Interest.READ, (h, ready) -> {
                TestSyscalls.current().eventfdRead(h.fd());
                counters(r, at);
                for (int k = 0; k < 3; k++) { // queued by the next flush, for the next round
                    handles.add(r.register(eventfd(), Interest.READ, (x, y) -> {}));
                }
                triggered.release();
            });
            ScheduledTask[] timer = new ScheduledTask[1];
            long extraEnters = 0;
            long rounds = 0;
            for (int i = 0; i < 20; i++) {
                if (i == 10) {
                    onReactor(r, () -> timer[0] = r.schedule(60, TimeUnit.SECONDS, () -> {}));
                }
                awaitAsleepInEnter(tid);
                sys.eventfdWrite(trigger.fd(), 1);
                assertTrue(triggered.tryAcquire(20, TimeUnit.SECONDS), "the trigger's event");
                awaitAsleepInEnter(tid);
                long[] now = new long[3];
                onReactor(r, () -> counters(r, now));
                long waits = now[1] - at[1];
                extraEnters += (now[0] - at[0]) - waits - (now[2] - at[2]);
                rounds += waits;
            }
            assertEquals(60, r.stats().get(Counter.CTL_BATCHED) - 1, "every ADD went through the ring");
            assertEquals(0, extraEnters, "enters beyond one per wait (EINTR retries excluded) in "
                    + rounds + " rounds: " + r.stats());
            onReactor(r, () -> timer[0].cancel());
            handles.add(trigger);
            for (Handle h : handles) {
                h.close(Duration.ofSeconds(10));
            }
        }
    }

    /** Enters, waits and EINTR-retried enters, read on the reactor thread. */
    private static void counters(Reactor r, long[] into) {
        ReactorStats s = r.stats();
        into[0] = s.get(Counter.URING_ENTERS);
        into[1] = s.get(Counter.EPOLL_WAITS);
        into[2] = s.get(Counter.EPOLL_WAITS_INTERRUPTED);
    }

    /** Until the thread is blocked in {@code io_uring_enter} (a poll never blocks). */
    private static void awaitAsleepInEnter(int tid) throws Exception {
        java.nio.file.Path p = java.nio.file.Path.of("/proc/self/task/" + tid + "/syscall");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
        while (!java.nio.file.Files.readString(p).startsWith(IO_URING_ENTER + " ")) {
            assertTrue(System.nanoTime() < deadline, "the reactor never slept in io_uring_enter");
            Thread.sleep(1);
        }
    }

    /** {@code __NR_io_uring_enter} on x86-64 and arm64 (asm-generic/unistd.h, Linux 5.1). */
    private static final int IO_URING_ENTER = 426;

    /**
     * The first of three ADDs in one round meets EEXIST: the linked chain breaks there, the two
     * after it are cancelled unrun and issued again next round, and all three handles work.
     */
    @Test
    void anOpFailingInALinkedRoundLeavesTheOpsAfterItToTheNextRound() throws Exception {
        try (ReactorGroup g = start(ReactorGroup.Io.BATCH)) {
            Reactor r = g.reactor(0);
            roundTrips(r, 1);
            assertEquals(ReactorGroup.Io.BATCH, r.io());
            int[] fds = {eventfd(), eventfd(), eventfd()};
            assertEquals(0, sys.epollCtl(r.epollFd(), Syscalls.EPOLL_CTL_ADD, fds[0], Syscalls.EPOLLIN, 0x7777_0000_0000L));
            var seen = new CountDownLatch(3);
            Handle[] hs = new Handle[3];
            var registered = new CountDownLatch(1);
            Handle trigger = r.register(eventfd(), Interest.READ, (t, ready) -> {
                TestSyscalls.current().eventfdRead(t.fd());
                for (int i = 0; i < 3; i++) { // from a handler: the next round sleeps, linked
                    hs[i] = r.register(fds[i], Interest.READ, (h, x) -> seen.countDown());
                }
                registered.countDown();
            });
            CompletableFuture<Integer> tid = new CompletableFuture<>();
            r.execute(() -> tid.complete(io.quiesce.testing.Signals.gettid()));
            awaitAsleepInEnter(tid.get(10, TimeUnit.SECONDS));
            sys.eventfdWrite(trigger.fd(), 1);
            await(registered);
            awaitAsleepInEnter(tid.get()); // a task sent earlier would make the round a poll
            roundTrips(r, 3);
            ReactorStats s = r.stats();
            assertEquals(1, s.get(Counter.CTL_EEXIST_AS_MOD), s.toString());
            for (int fd : fds) {
                assertTrue(EpollInfo.registeredFds(r.epollFd()).contains(fd), "fd " + fd + " registered: " + s);
                sys.eventfdWrite(fd, 1);
            }
            await(seen);
            for (Handle h : hs) {
                h.close(Duration.ofSeconds(10));
            }
            trigger.close(Duration.ofSeconds(10));
        }
    }

    @Test
    void withoutEpollWaitInTheProbeTheReactorFallsBackToPlainEpoll() throws Exception {
        var saved = Reactor.batchOptions;
        var o = EpollBatch.Options.defaults();
        Reactor.batchOptions = new EpollBatch.Options(o.entries(), o.timeoutMode(), o.disabledSysctl(),
                o.setupFlags(), p -> p.without(Ring.OP_EPOLL_WAIT));
        try (ReactorGroup g = start(ReactorGroup.Io.BATCH)) {
            Reactor r = g.reactor(0);
            roundTrips(r, 1);
            assertEquals(ReactorGroup.Io.EPOLL, r.io());
            var seen = new CountDownLatch(1);
            Handle h = r.register(eventfd(), Interest.READ, (x, ready) -> seen.countDown());
            roundTrips(r, 1);
            sys.eventfdWrite(h.fd(), 1);
            await(seen);
            assertEquals(0, r.stats().get(Counter.CTL_BATCHED));
            h.close(Duration.ofSeconds(10));
        } finally {
            Reactor.batchOptions = saved;
        }
    }

    /**
     * The window between the flush that queues a handle's op on the ring and the round that
     * submits it: a shutdown closes every handle there (its DEL step runs before the wait). The
     * queued op must not outlive that close in the kernel: an ADD the DEL step skipped ("never
     * added") nor a MOD that meets the DEL's ENOENT and is re-added by the seed's mapping. A held
     * reference keeps the reactor in its shutdown rounds while a dup makes the file ready again.
     */
    @Test
    void aModQueuedOnTheRingWhenShutdownClosesItsHandleLeavesNoRegistration() throws Exception {
        queuedOpMeetsShutdownClose(false);
    }

    /** The same window for the ADD of a handle registered in the task that asks for the shutdown. */
    @Test
    void anAddQueuedOnTheRingWhenShutdownClosesItsHandleLeavesNoRegistration() throws Exception {
        queuedOpMeetsShutdownClose(true);
    }

    private void queuedOpMeetsShutdownClose(boolean addInTheSameTask) throws Exception {
        ReactorGroup g = start(ReactorGroup.Io.BATCH);
        Reactor r = g.reactor(0);
        int epfd = r.epollFd();
        int fd = eventfd(); // the caller's fd: its close issues the DEL
        int dup = TestSyscalls.current().dup(fd);
        Handle[] h = new Handle[1];
        CompletableFuture<Void> closed = null;
        try {
            roundTrips(r, 1);
            assertEquals(ReactorGroup.Io.BATCH, r.io());
            if (!addInTheSameTask) {
                h[0] = r.register(fd, Interest.READ | Interest.LEVEL, (x, ready) -> {});
                roundTrips(r, 2);
                assertEquals(List.of(fd), EpollInfo.registeredFds(epfd).stream().filter(t -> t == fd).toList());
            }
            var groupClosed = new java.util.concurrent.atomic.AtomicReference<CompletableFuture<Void>>();
            onReactor(r, () -> {
                if (addInTheSameTask) {
                    h[0] = r.register(fd, Interest.READ, (x, ready) -> {});
                } else {
                    h[0].interest(Interest.READ); // a MOD (level to edge), queued by the next flush
                }
                assertTrue(h[0].tryRetain()); // keeps the close (and so the shutdown) from finishing
                groupClosed.set(g.closeAsync()); // from the reactor thread: asynchronous
            });
            closed = groupClosed.get();
            roundTrips(r, 2); // the flush, the shutdown's closes, the ring round, one more round
            assertFalse(h[0].isOpen());
            for (int i = 0; i < 3; i++) { // were it still registered, each write would be an event
                sys.eventfdWrite(dup, 1);
                roundTrips(r, 1);
            }
            assertEquals(List.of(), EpollInfo.registeredFds(epfd).stream().filter(t -> t == fd).toList(),
                    "no registration of the closed handle's fd: " + r.stats());
            assertEquals(0, r.stats().get(Counter.CTL_ENOENT_AS_ADD), "no re-ADD of a closed handle: " + r.stats());
            assertEquals(0, r.stats().get(Counter.STALE_EVENTS_DROPPED), r.stats().toString());
        } finally {
            if (h[0] != null) {
                h[0].release();
            }
            if (closed != null) {
                closed.get(10, TimeUnit.SECONDS);
            }
            g.close();
            sys.close(dup);
        }
    }
}
