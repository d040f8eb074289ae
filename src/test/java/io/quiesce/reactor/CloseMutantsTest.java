package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Edges of the close path and of event delivery that mutation testing (PIT) found unguarded:
 * each test kills mutants that survived the rest of the suite. Real fds throughout.
 */
@ExtendWith(NoFdLeaks.class)
class CloseMutantsTest {
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

    private int[] pipe() {
        int[] fds = new int[2];
        assertEquals(0, TestSyscalls.current().pipe(fds, TestSyscalls.O_NONBLOCK), "pipe2");
        return fds;
    }

    /**
     * Seed 7: EPOLLHUP is reported whether asked for or not. A pipe's read end registered with no
     * interest at all gets HUP (and only HUP) when the last write end closes; the handler must
     * see it, or a dead peer would never be noticed by a handle that paused its reads.
     */
    @Test
    void aHangupOnlyEdgeReachesTheHandlerOfAHandleWithNoInterest() throws Exception {
        int[] p = pipe();
        var ready = new CompletableFuture<Integer>();
        Handle h = reactor.register(p[0], 0, (handle, r) -> ready.complete(r));
        roundTrips(reactor, 2); // the ADD is flushed before the hang-up happens
        assertFalse(ready.isDone(), "no event before the hang-up");
        assertEquals(0, sys.close(p[1]));
        int r = ready.get(10, TimeUnit.SECONDS);
        assertEquals(Interest.HANGUP, r & (Interest.HANGUP | Interest.READ | Interest.WRITE),
                "HUP alone: " + Interest.toString(r));
        h.close(Duration.ofSeconds(10));
    }

    /**
     * Seed 7: EPOLLERR, likewise unasked. A pipe's write end registered with no interest gets ERR
     * when the last read end closes (a write would now fail with EPIPE).
     */
    @Test
    void anErrorOnlyEdgeReachesTheHandlerOfAHandleWithNoInterest() throws Exception {
        int[] p = pipe();
        var ready = new CompletableFuture<Integer>();
        Handle h = reactor.register(p[1], 0, (handle, r) -> ready.complete(r));
        roundTrips(reactor, 2);
        assertFalse(ready.isDone(), "no event before the reader is gone");
        assertEquals(0, sys.close(p[0]));
        int r = ready.get(10, TimeUnit.SECONDS);
        assertEquals(Interest.ERROR, r & (Interest.ERROR | Interest.READ | Interest.WRITE),
                "ERR alone: " + Interest.toString(r));
        h.close(Duration.ofSeconds(10));
        assertEquals(1, reactor.stats().get(Counter.CLOSES_COMPLETED));
    }

    /**
     * The DEL step is skipped only for an fd Quiesce made and never handed out (closing it ends
     * the registration with the open file description), and always issued for a caller's fd,
     * which may have a dup. Kills the mutants that make every fd "exclusive" or none.
     */
    @Test
    void onlyAnFdQuiesceOwnsSkipsTheDelAndACallersFdAlwaysGetsIt() throws Exception {
        Handle owned = ReactorInternals.registerOwned(reactor, eventfd(), Interest.READ, (h, r) -> {}, null);
        Handle callers = reactor.register(eventfd(), Interest.READ, (h, r) -> {});
        roundTrips(reactor, 2); // both ADDs are in the kernel
        long delBefore = reactor.stats().get(Counter.CTL_DEL);
        long savedBefore = reactor.stats().get(Counter.CTL_DEL_SAVED);
        owned.close(Duration.ofSeconds(10));
        assertEquals(delBefore, reactor.stats().get(Counter.CTL_DEL), "no DEL for an fd no dup of which can exist");
        assertEquals(savedBefore + 1, reactor.stats().get(Counter.CTL_DEL_SAVED));
        callers.close(Duration.ofSeconds(10));
        assertEquals(delBefore + 1, reactor.stats().get(Counter.CTL_DEL), "a caller's fd is always DELed");
        assertEquals(savedBefore + 1, reactor.stats().get(Counter.CTL_DEL_SAVED));
    }
}
