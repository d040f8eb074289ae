package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallFailure;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.BindException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A port is one server's unless sharing is asked for: a second bind, from this process or
 * another, over a Quiesce server or a JDK one, is a {@link BindException}; a server's own
 * per-reactor sockets still share it; a deliberate {@code SO_REUSEPORT} joiner of the same user
 * gets no connections; a restart right after a close is not refused by {@code TIME_WAIT}.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class PortBindingTest {
    private static final int CONNECTIONS = 200;

    private ReactorGroup group;
    private final List<Server> servers = new ArrayList<>();

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("port-test-"));
    }

    @AfterEach
    void stop() throws Exception {
        for (Server s : servers) {
            s.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
        }
        group.close(Duration.ofSeconds(WAIT_SECONDS));
    }

    private Server bind(int port, ServerOptions options) throws IOException {
        Server s = Server.bind(group, loopback(port), options, EchoTest.Echo::new);
        servers.add(s);
        return s;
    }

    private static void assertPortInUse(BindException e) {
        var f = assertInstanceOf(SyscallFailure.class, e);
        assertTrue(f.call().startsWith("bind") || f.call().startsWith("listen"), f.call());
        assertEquals(Errno.EADDRINUSE, f.errno(), e.getMessage());
        assertTrue(f.fd() >= 0);
    }

    /** Connects and closes {@code n} times, one at a time. */
    private static void connectTimes(int port, int n) throws IOException {
        for (int i = 0; i < n; i++) {
            try (Socket s = new Socket()) {
                s.connect(loopback(port), (int) TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
            }
        }
    }

    @Test
    void aSecondBindInTheSameProcessIsRefused() throws Exception {
        Server first = bind(0, ServerOptions.defaults());
        assertEquals(2, first.listeners(), "one SO_REUSEPORT socket per reactor, all bound");
        assertPortInUse(assertThrows(BindException.class, () -> bind(first.port(), ServerOptions.defaults())));
        assertPortInUse(assertThrows(BindException.class,
                () -> bind(first.port(), ServerOptions.defaults().withSharedListener(true))));
        // the first server is untouched and still serves
        try (Socket s = connect(first)) {
            s.getOutputStream().write(9);
            assertEquals(9, s.getInputStream().read());
        }
    }

    @Test
    void aBindFromAnotherProcessIsRefused() throws Exception {
        Server first = bind(0, ServerOptions.defaults());
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String cp = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
        var pb = new ProcessBuilder(java, "--enable-native-access=ALL-UNNAMED",
                "-Xmx64m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", cp, BindChild.class.getName(),
                Integer.toString(first.port()));
        pb.redirectError(ProcessBuilder.Redirect.DISCARD);
        Process child = pb.start();
        String line;
        try (var in = new BufferedReader(new InputStreamReader(child.getInputStream()))) {
            line = in.readLine();
        } finally {
            if (!child.waitFor(WAIT_SECONDS, TimeUnit.SECONDS)) {
                child.destroyForcibly();
                fail("the child did not finish");
            }
        }
        assertEquals("refused java.net.BindException bind(/127.0.0.1:" + first.port() + ") EADDRINUSE", line);
        assertEquals(0, child.exitValue());
    }

    @Test
    void aBindOverAJdkServerSocketIsABindException() throws Exception {
        try (ServerSocket ss = new ServerSocket(0, 50, InetAddress.getLoopbackAddress())) {
            assertPortInUse(assertThrows(BindException.class, () -> bind(ss.getLocalPort(), ServerOptions.defaults())));
        }
    }

    @Test
    void aRestartRightAfterACloseIsNotRefusedByTimeWait() throws Exception {
        ConnectionHandler closeAtOnce = new EchoTest.Echo() {
            @Override
            public void onOpen(Connection c) {
                c.close(); // the server closes first: its side of each connection goes to TIME_WAIT
            }
        };
        Server first = Server.bind(group, loopback(0), () -> closeAtOnce);
        int port = first.port();
        for (int i = 0; i < 5; i++) {
            try (Socket s = connect(first)) {
                assertEquals(-1, s.getInputStream().read());
            }
        }
        eventually("server-side TIME_WAIT sockets on the port", () -> timeWaitOnLocalPort(port) > 0);
        first.closeAsync().get(WAIT_SECONDS, TimeUnit.SECONDS);
        assertTrue(timeWaitOnLocalPort(port) > 0, "still in TIME_WAIT when the new server binds");
        Server again = bind(port, ServerOptions.defaults());
        try (Socket s = connect(again)) {
            s.getOutputStream().write(5);
            assertEquals(5, s.getInputStream().read());
        }
    }

    /** TCP sockets in TIME_WAIT (state 06) whose local port is {@code port}, from /proc/net/tcp. */
    private static long timeWaitOnLocalPort(int port) {
        String hexPort = ":" + String.format(Locale.ROOT, "%04X", port);
        try (var lines = Files.lines(Path.of("/proc/net/tcp"))) {
            return lines.skip(1).map(String::trim).map(l -> l.split("\\s+"))
                    .filter(f -> f[1].endsWith(hexPort) && f[3].equals("06")).count();
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void serversThatOptInShareThePortAndBothGetConnections() throws Exception {
        ServerOptions shared = ServerOptions.defaults().withSharedPort(true);
        Server a = bind(0, shared);
        Server b = bind(a.port(), shared);
        assertEquals(a.port(), b.port());
        // one that did not opt in is still refused
        assertPortInUse(assertThrows(BindException.class, () -> bind(a.port(), ServerOptions.defaults())));
        connectTimes(a.port(), CONNECTIONS);
        eventually("every connection accepted",
                () -> a.stats().accepted() + b.stats().accepted() == CONNECTIONS);
        assertTrue(a.stats().accepted() > 0 && b.stats().accepted() > 0,
                "the kernel spread connections over both: " + a.stats() + " / " + b.stats());
    }

    @Test
    void aDeliberateReusePortJoinerOfTheSameUserGetsNoConnections() throws Exception {
        Server server = bind(0, ServerOptions.defaults());
        try (ServerSocketChannel joiner = ServerSocketChannel.open(StandardProtocolFamily.INET)) {
            // The kernel lets a socket of the same user that sets SO_REUSEPORT join the group (an
            // IPv4 one: the JDK's default IPv6 socket would form a group of its own, and lose every
            // lookup to the IPv4 listeners' better score, so it would prove nothing)...
            joiner.setOption(StandardSocketOptions.SO_REUSEPORT, true);
            joiner.bind(loopback(server.port()));
            joiner.configureBlocking(false);
            connectTimes(server.port(), CONNECTIONS);
            int[] stolen = {0};
            eventually("every connection accepted by someone", () -> {
                try {
                    for (SocketChannel c; (c = joiner.accept()) != null; ) {
                        c.close();
                        stolen[0]++;
                    }
                } catch (IOException e) {
                    throw new AssertionError(e);
                }
                return server.stats().accepted() + stolen[0] == CONNECTIONS;
            });
            // ...but the group's program only ever picks the server's own sockets.
            assertEquals(0, stolen[0], "connections given to a socket that joined the server's port");
            assertEquals(CONNECTIONS, server.stats().accepted());
        }
    }

    @Test
    void anExclusiveServersOwnListenersStillShareItsConnections() throws Exception {
        Server server = bind(0, ServerOptions.defaults());
        long before0 = accepts(0);
        long before1 = accepts(1);
        connectTimes(server.port(), CONNECTIONS);
        eventually("every connection accepted", () -> server.stats().accepted() == CONNECTIONS);
        long on0 = accepts(0) - before0;
        long on1 = accepts(1) - before1;
        assertEquals(CONNECTIONS, on0 + on1);
        assertTrue(on0 > 0 && on1 > 0, "the group's program spreads over every reactor's socket: " + on0 + " / " + on1);
    }

    private long accepts(int reactor) {
        return NetStats.of(group.reactor(reactor)).get(NetStats.Counter.ACCEPTS);
    }

    @Test
    void aSingleListenerCannotBeJoinedAtAll() throws Exception {
        Server server = bind(0, ServerOptions.defaults().withSharedListener(true));
        try (ServerSocketChannel joiner = ServerSocketChannel.open(StandardProtocolFamily.INET)) {
            joiner.setOption(StandardSocketOptions.SO_REUSEPORT, true);
            assertThrows(BindException.class, () -> joiner.bind(loopback(server.port())),
                    "one socket without SO_REUSEPORT: the kernel refuses every joiner");
        }
    }
}
