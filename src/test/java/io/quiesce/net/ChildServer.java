package io.quiesce.net;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.Socket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static io.quiesce.net.NetTesting.WAIT_SECONDS;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A test server in a child JVM, on this run's transport ({@code quiesce.io}), spoken to over its
 * stdin and stdout: it prints {@code ready <port> [words...] io=<io>} once it listens, answers a
 * {@code stats} line with {@code name=value} counters, and stops at end of input. Its stderr goes
 * to a file the test reads.
 */
final class ChildServer implements AutoCloseable {
    private final Process process;
    private final Path stderr;
    private final PrintWriter out;
    private final BufferedReader in;
    private final String[] ready;

    private ChildServer(Process process, Path stderr) throws IOException {
        this.process = process;
        this.stderr = stderr;
        this.out = new PrintWriter(process.getOutputStream(), true);
        this.in = new BufferedReader(new InputStreamReader(process.getInputStream()));
        String line = in.readLine();
        assertNotNull(line, "child started");
        assertTrue(line.startsWith("ready "), line);
        ready = line.split(" ");
        String io = System.getProperty("quiesce.io", "epoll").toUpperCase(Locale.ROOT);
        assertEquals("io=" + io, ready[ready.length - 1], "the child runs the transport under test");
    }

    /**
     * Starts {@code main} and waits for its ready line.
     *
     * @param fdLimit the child's fd limit ({@code ulimit -n}), or 0 for this JVM's
     */
    static ChildServer start(Class<?> main, int fdLimit) throws IOException {
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        List<String> cmd = new ArrayList<>();
        if (fdLimit > 0) {
            cmd.addAll(List.of("sh", "-c", "ulimit -n " + fdLimit + " && exec \"$0\" \"$@\""));
        }
        cmd.addAll(List.of(java, "--enable-native-access=ALL-UNNAMED", "-Xmx64m", "-XX:+UseSerialGC"));
        if (fdLimit > 0) {
            cmd.add("-XX:-MaxFDLimit"); // keep the limit the shell set
        }
        cmd.addAll(List.of("-Dquiesce.io=" + System.getProperty("quiesce.io", "epoll"), "-cp", cp, main.getName()));
        Path stderr = Files.createTempFile(main.getSimpleName(), ".err");
        Process p = new ProcessBuilder(cmd).redirectError(stderr.toFile()).start();
        try {
            return new ChildServer(p, stderr);
        } catch (IOException | RuntimeException | Error e) {
            p.destroyForcibly();
            Files.deleteIfExists(stderr);
            throw e;
        }
    }

    int port() {
        return Integer.parseInt(ready[1]);
    }

    /** {@return word {@code i} of the ready line, {@code ready} being word 0} */
    String readyWord(int i) {
        return ready[i];
    }

    long pid() {
        return process.pid();
    }

    /** {@return whether a new connection to the child gets one byte echoed within 2 s} */
    boolean echoes() {
        try (Socket s = new Socket("127.0.0.1", port())) {
            s.setSoTimeout(2_000);
            s.getOutputStream().write(42);
            return s.getInputStream().read() == 42;
        } catch (IOException e) {
            return false;
        }
    }

    /** Sends {@code command} and {@return the child's answer} */
    String ask(String command) throws IOException {
        out.println(command);
        String line = in.readLine();
        assertNotNull(line, "child answered " + command);
        return line;
    }

    String stats() throws IOException {
        return ask("stats");
    }

    long stat(String name) throws IOException {
        return stat(stats(), name);
    }

    static long stat(String statsLine, String name) {
        Matcher m = Pattern.compile(name + "=(\\d+)").matcher(statsLine);
        assertTrue(m.find(), statsLine);
        return Long.parseLong(m.group(1));
    }

    String stderr() throws IOException {
        return Files.readString(stderr);
    }

    /** Ends the child's input and waits (bounded) for it to exit with status 0. */
    void stop() throws InterruptedException {
        out.close();
        assertTrue(process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS), "child exited");
        assertEquals(0, process.exitValue(), "child's exit status");
    }

    @Override
    public void close() throws IOException, InterruptedException {
        process.destroyForcibly();
        process.waitFor(WAIT_SECONDS, TimeUnit.SECONDS);
        Files.deleteIfExists(stderr);
    }
}
