package io.quiesce.net;

import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        var pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED", "-Xmx64m", "-XX:+UseSerialGC",
                "-Dquiesce.io=" + System.getProperty("quiesce.io", "epoll"),
                "-cp", cp, StaleClaimChild.class.getName());
        Path stderr = Files.createTempFile("stale-claim-child", ".err");
        pb.redirectError(stderr.toFile());
        Process child = pb.start();
        try (var out = new PrintWriter(child.getOutputStream(), true);
             var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
            String ready = in.readLine();
            assertNotNull(ready, "child started");
            assertTrue(ready.startsWith("ready "), ready);
            String[] words = ready.split(" ");
            int port = Integer.parseInt(words[1]);
            String io = System.getProperty("quiesce.io", "epoll").toUpperCase(Locale.ROOT);
            assertEquals("io=" + io, words[3], "the child runs the transport under test");

            // The kernel gives an accepted socket the lowest free number, which is the stale one
            // unless the child's JVM took it meanwhile: a connection served on another number is
            // closed and the next one tries again.
            int served = 0;
            boolean closed = false;
            for (int i = 0; i < TRIES && !closed; i++) {
                try (Socket s = new Socket()) {
                    s.setSoTimeout((int) TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
                    s.connect(loopback(port));
                    s.getOutputStream().write(42);
                    int r;
                    try {
                        r = s.getInputStream().read();
                    } catch (SocketTimeoutException e) {
                        fail("a connection was neither served nor closed (its fd leaked, or its reactor "
                                + "stopped): " + stats(out, in) + "\nthe child's stderr:\n" + Files.readString(stderr));
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
            System.out.println("stale fd " + words[2] + ": refused after " + served + " served");
            String after = stats(out, in);
            assertEquals(0, stat(after, "stoppedReactors"), after);
            assertEquals(0, stat(after, "handlerFailures"), "the listener failed: " + after);

            out.println("release"); // the number is nobody's now: every accept that gets it is refused until then
            String released = in.readLine();
            assertNotNull(released, "child answered");
            assertTrue(released.startsWith("released "), released);
            eventually("the child serves again after its back-off", () -> {
                try (Socket s = new Socket("127.0.0.1", port)) {
                    s.setSoTimeout(2_000);
                    s.getOutputStream().write(42);
                    return s.getInputStream().read() == 42;
                } catch (Exception e) {
                    return false;
                }
            });
            String end = stats(out, in);
            assertEquals(0, stat(end, "stoppedReactors"), end);
            assertTrue(stat(end, "accepted") >= served + 2, end);
            out.close(); // end of input: the child stops
            assertTrue(child.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "child exited");
            assertEquals(0, child.exitValue(), "child's exit status");
            String errors = Files.readString(stderr);
            assertTrue(errors.contains("already registered"), "the warning names the failure:\n" + errors);
            assertFalse(errors.contains("\tat "), "no stack trace on the child's stderr:\n" + errors);
        } finally {
            child.destroyForcibly();
            child.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
            Files.deleteIfExists(stderr);
        }
    }

    private static String stats(PrintWriter out, BufferedReader in) throws Exception {
        out.println("stats");
        String line = in.readLine();
        assertNotNull(line, "child answered");
        return line;
    }

    private static long stat(String line, String name) {
        Matcher m = Pattern.compile(name + "=(\\d+)").matcher(line);
        assertTrue(m.find(), line);
        return Long.parseLong(m.group(1));
    }
}
