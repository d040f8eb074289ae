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
