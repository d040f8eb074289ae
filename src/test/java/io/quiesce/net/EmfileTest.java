package io.quiesce.net;

import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

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
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        var pb = new ProcessBuilder("sh", "-c", "ulimit -n 128 && exec \"$0\" \"$@\"", java,
                "--enable-native-access=ALL-UNNAMED", "-XX:-MaxFDLimit", "-Xmx64m", "-XX:+UseSerialGC",
                // the child runs on this run's transport (the uring-transport execution: multishot accept)
                "-Dquiesce.io=" + System.getProperty("quiesce.io", "epoll"),
                "-cp", cp, EmfileChild.class.getName());
        Path stderr = Files.createTempFile("emfile-child", ".err");
        pb.redirectError(stderr.toFile());
        Process child = pb.start();
        List<SocketChannel> flood = new ArrayList<>();
        try (var out = new PrintWriter(child.getOutputStream(), true);
             var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
            String ready = in.readLine();
            assertNotNull(ready, "child started");
            assertTrue(ready.startsWith("ready "), ready);
            String[] words = ready.split(" ");
            int port = Integer.parseInt(words[1]);
            String io = System.getProperty("quiesce.io", "epoll").toUpperCase(Locale.ROOT);
            assertEquals("io=" + io, words[2], "the child runs the transport under test");

            for (int i = 0; i < FLOOD; i++) {
                SocketChannel ch = SocketChannel.open();
                ch.configureBlocking(false);
                ch.connect(loopback(port));
                flood.add(ch);
            }
            // Progress, not speed: poll (bounded) until the child reports hitting EMFILE.
            for (int polls = 0; stat(out, in, "fdExhaustion") == 0; polls++) {
                if (polls > WAIT_SECONDS * 50) {
                    out.println("stats");
                    fail("the child never hit EMFILE: " + in.readLine() + "; its fds: "
                            + fdCount(child.pid()) + "; its stderr:\n" + Files.readString(stderr));
                }
                Thread.sleep(20);
            }
            long cpuBefore = cpuMillis(child.pid());
            Thread.sleep(HOLD_MILLIS); // the flood holds every fd the child has
            long cpuUsed = cpuMillis(child.pid()) - cpuBefore;
            System.out.println("EMFILE hold: child used " + cpuUsed + " ms of CPU in " + HOLD_MILLIS + " ms");
            assertTrue(cpuUsed < CPU_BOUND_MILLIS, "the child spun: " + cpuUsed + " ms of CPU in "
                    + HOLD_MILLIS + " ms of EMFILE");
            assertTrue(stat(out, in, "fdExhaustion") >= 1);
            // The back-off's warning is the child's first log line, written with no fd free: a
            // logger that fails then must not close the listener nor stop the reactor.
            assertEquals(0, stat(out, in, "stoppedReactors"), "a reactor stopped under EMFILE");
            assertEquals(0, stat(out, in, "handlerFailures"), "a handler (the listener) failed under EMFILE");

            for (SocketChannel ch : flood) {
                ch.close();
            }
            flood.clear();
            // Fds come back as the child closes the flood's connections; it accepts again by itself.
            eventually("the child serves again", () -> {
                try (Socket s = new Socket("127.0.0.1", port)) {
                    s.setSoTimeout(2_000);
                    s.getOutputStream().write(42);
                    return s.getInputStream().read() == 42;
                } catch (Exception e) {
                    return false;
                }
            });
            assertEquals(0, stat(out, in, "stoppedReactors"), "a reactor stopped");
            out.close(); // end of input: the child stops
            assertTrue(child.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "child exited");
            String errors = Files.readString(stderr);
            assertFalse(errors.contains("Exception") || errors.contains("Error:"), "the child's stderr:\n" + errors);
        } finally {
            for (SocketChannel ch : flood) {
                ch.close();
            }
            child.destroyForcibly();
            child.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
            Files.deleteIfExists(stderr);
        }
    }

    private static long stat(PrintWriter out, BufferedReader in, String name) throws Exception {
        out.println("stats");
        String line = in.readLine();
        assertNotNull(line, "child answered");
        Matcher m = Pattern.compile(name + "=(\\d+)").matcher(line);
        assertTrue(m.find(), line);
        return Long.parseLong(m.group(1));
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
