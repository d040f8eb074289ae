package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.RepeatedTest;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Regression (found in review): a write made on the reactor thread overtook one made earlier on
 * another thread, because the foreign write waited in the connection's inbox until the next flush
 * and the reactor's write went straight to the queue ahead of it.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class WriteOrderTest {
    @RepeatedTest(3)
    void aReactorThreadWriteDoesNotOvertakeAnEarlierForeignWrite() throws Exception {
        try (var group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1).withThreadNamePrefix("order-"))) {
            Server server = Server.bind(group, new InetSocketAddress("127.0.0.1", 0), () -> new ConnectionHandler() {
                @Override
                public void onRead(Connection c, MemorySegment data) throws Exception {
                    // "A" from another thread, finished before "B" is written here: A must go first.
                    Thread other = Thread.ofPlatform().start(() -> c.write("A".getBytes(StandardCharsets.US_ASCII)));
                    other.join();
                    c.write("B".getBytes(StandardCharsets.US_ASCII));
                }
            });
            try (Socket s = new Socket("127.0.0.1", server.port())) {
                s.setSoTimeout(30_000);
                s.getOutputStream().write('x');
                byte[] got = s.getInputStream().readNBytes(2);
                assertEquals("AB", new String(got, StandardCharsets.US_ASCII));
            }
            server.closeAsync().get();
            group.close(Duration.ofSeconds(20));
        }
    }
}
