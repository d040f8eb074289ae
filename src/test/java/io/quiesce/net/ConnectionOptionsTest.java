package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/** The connection options as the kernel sees them, and the builder that makes them. */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class ConnectionOptionsTest {

    @Test
    void resetOnCloseSetsAZeroLingerOnTheAcceptedSocketAndTheDefaultLeavesItOff() throws Exception {
        assertEquals(0, acceptedSocketLinger(ConnectionOptions.builder().resetOnClose(true).build()));
        assertEquals(-1, acceptedSocketLinger(ConnectionOptions.defaults()));
    }

    /** {@code getsockopt(SO_LINGER)} of the server side of one connection, asked on its reactor thread while it is open. */
    private static int acceptedSocketLinger(ConnectionOptions options) throws Exception {
        var linger = new CompletableFuture<Integer>();
        try (ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("options-"));
             Server server = Server.bind(group, loopback(0), ServerOptions.defaults().withConnection(options),
                     () -> new ConnectionHandler() {
                         @Override public void onOpen(Connection c) {
                             try {
                                 linger.complete(TestSyscalls.current().linger(((TcpConnection) c).fd));
                             } catch (Throwable t) {
                                 linger.completeExceptionally(t);
                             }
                         }
                         @Override public void onRead(Connection c, MemorySegment data) {}
                     });
             Socket s = connect(server)) {
            return linger.get(WAIT_SECONDS, TimeUnit.SECONDS);
        }
    }

    @Test
    void theBuilderStartsFromTheDefaultsAndToBuilderRoundTrips() {
        assertEquals(ConnectionOptions.defaults(), ConnectionOptions.builder().build());
        ConnectionOptions o = ConnectionOptions.builder().tcpNoDelay(false).keepAlive(true).bufferSizes(4096, 8192)
                .resetOnClose(true).timeouts(Duration.ofSeconds(3), Duration.ofSeconds(4)).watermarks(1000, 2000)
                .maxQueuedBytes(1 << 20).readBudget(777).build();
        assertEquals(o, o.toBuilder().build());
        assertFalse(o.tcpNoDelay());
        assertTrue(o.keepAlive());
        assertEquals(4096, o.receiveBufferSize());
        assertEquals(8192, o.sendBufferSize());
        assertTrue(o.resetOnClose());
        assertEquals(0, o.lingerSeconds());
        assertEquals(-1, ConnectionOptions.defaults().lingerSeconds());
        assertEquals(Duration.ofSeconds(3), o.readIdleTimeout());
        assertEquals(Duration.ofSeconds(4), o.writeTimeout());
        assertEquals(1000, o.lowWatermark());
        assertEquals(2000, o.highWatermark());
        assertEquals(1 << 20, o.maxQueuedBytes());
        assertEquals(777, o.readBudget());
    }

    @Test
    void theBuilderChecksWhatItBuilds() {
        assertThrows(IllegalArgumentException.class, () -> ConnectionOptions.builder().watermarks(2000, 1000).build());
        assertThrows(IllegalArgumentException.class, () -> ConnectionOptions.builder().bufferSizes(-1, 0).build());
        assertThrows(IllegalArgumentException.class, () -> ConnectionOptions.builder().readBudget(0).build());
        assertThrows(NullPointerException.class, () -> ConnectionOptions.builder().timeouts(null, Duration.ZERO).build());
        assertThrows(IllegalArgumentException.class,
                () -> ConnectionOptions.builder().timeouts(Duration.ofSeconds(-1), Duration.ZERO).build());
        // watermarks raise the hard limit to the high mark, as the old withWatermarks did
        assertEquals(128L << 20, ConnectionOptions.builder().watermarks(1, 128 << 20).build().maxQueuedBytes());
    }
}
