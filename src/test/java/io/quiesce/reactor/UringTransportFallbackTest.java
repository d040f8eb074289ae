package io.quiesce.reactor;

import io.quiesce.testing.NoFdLeaks;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import static io.quiesce.reactor.ReactorTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The io_uring transport is probed at run time: a missing opcode means plain epoll, and the reactor works. */
@ExtendWith(NoFdLeaks.class)
class UringTransportFallbackTest {
    private static ReactorGroup start() throws Exception {
        return ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("uring-fb-")
                .withIo(ReactorGroup.Io.URING));
    }

    @Test
    void theTransportRunsWhereTheKernelHasEveryOp() throws Exception {
        try (ReactorGroup g = start()) {
            assertEquals(ReactorGroup.Io.URING, g.reactor(0).io(), "this kernel (6.15+) has every op the transport needs");
            roundTrips(g.reactor(0), 2);
            assertTrue(g.reactor(0).stats().get(ReactorStats.Counter.URING_ENTERS) > 0);
        }
    }

    @Test
    void aMissingOpcodeFallsBackToPlainEpoll() throws Exception {
        for (int op : new int[] {Ring.OP_RECV, Ring.OP_ACCEPT, Ring.OP_SENDMSG, Ring.OP_EPOLL_WAIT}) {
            var before = UringTesting.transportOptions(TransportRing.Options.defaults().withProbeView(p -> p.without(op)));
            try (ReactorGroup g = start()) {
                Reactor r = g.reactor(0);
                assertEquals(ReactorGroup.Io.EPOLL, r.io(), "op " + op + " missing: plain epoll");
                roundTrips(r, 2);
                assertEquals(0, r.stats().get(ReactorStats.Counter.URING_ENTERS), "no ring in use");
            } finally {
                UringTesting.transportOptions(before);
            }
        }
    }
}
