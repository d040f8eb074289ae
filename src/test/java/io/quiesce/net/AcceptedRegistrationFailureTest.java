package io.quiesce.net;

import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * An accepted socket whose registration throws (here: its fd number is still owned by a handle
 * whose fd a user closed behind its back, {@link StaleClaimChild}) is closed, and the listener
 * goes on accepting after a back-off: the fd does not leak, and on the io_uring transport the
 * exception does not reach the ring's dispatch and stop the reactor.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class AcceptedRegistrationFailureTest {
    private static final int TRIES = 5;

    @Test
    void anAcceptedSocketThatCannotBeRegisteredIsClosedAndAcceptingGoesOn() throws Exception {
        try (ChildServer child = ChildServer.start(StaleClaimChild.class, 0)) {
            // The kernel gives an accepted socket the lowest free number, which is the stale one
            // unless the child's JVM took it meanwhile: a connection served on another number is
            // closed and the next one tries again.
            int served = 0;
            boolean closed = false;
            for (int i = 0; i < TRIES && !closed; i++) {
                try (Socket s = new Socket()) {
                    s.setSoTimeout((int) TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
                    s.connect(loopback(child.port()));
                    s.getOutputStream().write(42);
                    int r;
                    try {
                        r = s.getInputStream().read();
                    } catch (SocketTimeoutException e) {
                        fail("a connection was neither served nor closed (its fd leaked, or its reactor "
                                + "stopped): " + child.stats() + "\nthe child's stderr:\n" + child.stderr());
                        return;
                    } catch (SocketException reset) {
                        r = -1;
                    }
                    if (r == 42) {
                        served++;
                    } else {
                        assertEquals(-1, r, "end of stream or reset");
                        closed = true;
                    }
                }
            }
            assertTrue(closed, "no accepted socket got the stale number in " + TRIES + " tries (" + served + " served)");
            System.out.println("stale fd " + child.readyWord(2) + ": refused after " + served + " served");
            String after = child.stats();
            assertEquals(0, ChildServer.stat(after, "stoppedReactors"), after);
            assertEquals(0, ChildServer.stat(after, "handlerFailures"), "the listener failed: " + after);

            // The number is nobody's from now on; until then every accept that gets it is refused.
            String released = child.ask("release");
            assertTrue(released.startsWith("released "), released);
            eventually("the child serves again after its back-off", child::echoes);
            String end = child.stats();
            assertEquals(0, ChildServer.stat(end, "stoppedReactors"), end);
            assertTrue(ChildServer.stat(end, "accepted") >= served + 2, end);
            child.stop();
            String errors = child.stderr();
            assertTrue(errors.contains("already registered"), "the warning names the failure:\n" + errors);
            assertFalse(errors.contains("\tat "), "no stack trace on the child's stderr:\n" + errors);
        }
    }
}
