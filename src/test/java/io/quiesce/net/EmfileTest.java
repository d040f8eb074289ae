package io.quiesce.net;

import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * EMFILE: a child JVM limited to 128 fds is flooded with connections. Its listeners must back off
 * instead of spinning on a level-triggered listener they cannot drain, and accept again by
 * themselves once the clients are gone.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class EmfileTest {
    private static final int FLOOD = 400;
    /** CPU the child may use over the hold window; a spinning reactor would use all of it. */
    private static final long HOLD_MILLIS = 3_000;
    private static final long CPU_BOUND_MILLIS = 1_500;

    @Test
    void floodedChildBacksOffWithoutSpinningAndRecovers() throws Exception {
        List<SocketChannel> flood = new ArrayList<>();
        try (ChildServer child = ChildServer.start(EmfileChild.class, 128)) {
            // The reactors are parked while the flood connects: none has taken a connection on
            // when the fds run out (on io_uring the kernel accepts the whole backlog in the next
            // enter, before any of it is handed to Java), so its first one finds no fd free.
            assertEquals("held", child.ask("hold"));
            for (int i = 0; i < FLOOD; i++) {
                SocketChannel ch = SocketChannel.open();
                ch.configureBlocking(false);
                ch.connect(loopback(child.port()));
                flood.add(ch);
            }
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
            for (SocketChannel ch : flood) {
                while (!ch.finishConnect()) { // the handshake completes in the child's backlog
                    assertTrue(System.nanoTime() - deadline < 0, "the flood's connects never completed");
                    Thread.sleep(1);
                }
            }
            assertEquals("going", child.ask("go"));
            // Progress, not speed: poll (bounded) until the child reports hitting EMFILE.
            for (int polls = 0; child.stat("fdExhaustion") == 0; polls++) {
                if (polls > WAIT_SECONDS * 50) {
                    fail("the child never hit EMFILE: " + child.stats() + "; its fds: " + fdCount(child.pid())
                            + "; its stderr:\n" + child.stderr());
                }
                Thread.sleep(20);
            }
            long cpuBefore = cpuMillis(child.pid());
            Thread.sleep(HOLD_MILLIS); // the flood holds every fd the child has
            long cpuUsed = cpuMillis(child.pid()) - cpuBefore;
            System.out.println("EMFILE hold: child used " + cpuUsed + " ms of CPU in " + HOLD_MILLIS + " ms");
            assertTrue(cpuUsed < CPU_BOUND_MILLIS, "the child spun: " + cpuUsed + " ms of CPU in "
                    + HOLD_MILLIS + " ms of EMFILE");
            assertTrue(child.stat("fdExhaustion") >= 1);
            // The back-off's warning is the child's first log line, written with no fd free: a
            // logger that fails then must not close the listener nor stop the reactor.
            assertEquals(0, child.stat("stoppedReactors"), "a reactor stopped under EMFILE");
            assertEquals(0, child.stat("handlerFailures"), "a handler (the listener) failed under EMFILE");

            for (SocketChannel ch : flood) {
                ch.close();
            }
            flood.clear();
            // Fds come back as the child closes the flood's connections; it accepts again by itself.
            eventually("the child serves again", child::echoes);
            assertEquals(0, child.stat("stoppedReactors"), "a reactor stopped");
            child.stop();
            String errors = child.stderr();
            assertFalse(errors.contains("Exception") || errors.contains("Error:"), "the child's stderr:\n" + errors);
        } finally {
            for (SocketChannel ch : flood) {
                ch.close();
            }
        }
    }

    private static long fdCount(long pid) {
        try (var fds = Files.list(Path.of("/proc/" + pid + "/fd"))) {
            return fds.count();
        } catch (Exception e) {
            return -1;
        }
    }

    /** utime + stime of {@code pid} from {@code /proc/<pid>/stat}, in milliseconds (USER_HZ = 100). */
    private static long cpuMillis(long pid) throws Exception {
        String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        // after "pid (comm) ": field 3 is f[0]; utime is field 14, stime field 15
        return (Long.parseLong(f[11]) + Long.parseLong(f[12])) * 10;
    }
}
