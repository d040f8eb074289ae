package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallFailure;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.MemorySegment;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;

import static io.quiesce.net.NetTesting.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * A connection kept open after the peer's FIN (TCP half-close) reads nothing more, so the error
 * edge of a later RST is the only news of the peer's death: it must close the connection with
 * the socket's error, not leave it open until some write happens to fail.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class HalfClosedResetTest {
    private ReactorGroup group;
    private Server server;

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
    }

    @AfterEach
    void stop() throws Exception {
        if (server != null) {
            server.close();
        }
        group.close(Duration.ofSeconds(20));
    }

    @Test
    void aResetAfterThePeersFinClosesAHalfOpenConnectionWithTheSocketError() throws Exception {
        var peerClosed = new CountDownLatch(1);
        var closed = new CompletableFuture<Throwable>();
        server = Server.bind(group, loopback(0), ServerOptions.defaults(), () -> new ConnectionHandler() {
            @Override
            public void onRead(Connection c, MemorySegment data) {}

            @Override
            public void onPeerClosed(Connection c) {
                peerClosed.countDown(); // stay open: the write side is still ours
            }

            @Override
            public void onClose(Connection c, Throwable cause) {
                closed.complete(cause);
            }
        });
        try (Socket peer = connect(server)) {
            peer.shutdownOutput(); // FIN: the server side goes to CLOSE_WAIT
            await(peerClosed);
            assertFalse(closed.isDone(), "a half-closed connection stays open");
            peer.setSoLinger(true, 0); // close sends RST
        }
        // tcp_reset() in CLOSE_WAIT sets sk_err = EPIPE; epoll reports it as EPOLLERR (with HUP).
        Throwable cause = await(closed);
        var e = assertInstanceOf(SyscallFailure.class, cause, "closed by the socket error: " + cause);
        assertTrue(e.errno() == Errno.EPIPE || e.errno() == Errno.ECONNRESET, String.valueOf(e));
    }
}
