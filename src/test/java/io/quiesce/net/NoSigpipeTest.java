package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallFailure;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.lang.reflect.Field;
import java.net.Socket;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;

import static io.quiesce.net.NetTesting.*;
import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Every socket write is sent with {@code MSG_NOSIGNAL}. The JVM installs a handler for SIGPIPE
 * that ignores it, so a missing flag changes nothing a test can see in the write's result: the
 * call still returns {@code EPIPE}. What does change is that the kernel raises SIGPIPE on the
 * writing thread ({@code sk_stream_error}: EPIPE without {@code MSG_NOSIGNAL} sends it), and in
 * a process that embeds the JVM with SIGPIPE at its default action that kills the process. The
 * signal is made visible here by blocking it on the reactor thread around the write: a blocked
 * signal stays pending, and {@code sigtimedwait} with a zero timeout takes it if it is there.
 */
@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class NoSigpipeTest {
    private static final int SIG_BLOCK = 0;
    private static final int SIG_UNBLOCK = 1;
    private static final int SIGPIPE = 13;
    private static final long SIGSET_BYTES = 128; // glibc's sigset_t
    private static final Linker LINKER = Linker.nativeLinker();
    private static final MethodHandle PTHREAD_SIGMASK = libc("pthread_sigmask",
            FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS, ADDRESS));
    private static final MethodHandle SIGTIMEDWAIT = libc("sigtimedwait",
            FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));

    private ReactorGroup group;
    private Server server;

    private static MethodHandle libc(String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(LINKER.defaultLookup().find(name).orElseThrow(), fd);
    }

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

    /** {@code pthread_sigmask(how, {SIGPIPE})} on the calling thread. */
    private static void sigpipeMask(int how) throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment set = sigpipeSet(a);
            assertEquals(0, (int) PTHREAD_SIGMASK.invokeExact(how, set, MemorySegment.NULL), "pthread_sigmask");
        }
    }

    private static MemorySegment sigpipeSet(Arena a) {
        MemorySegment set = a.allocate(SIGSET_BYTES, 8);
        set.set(JAVA_LONG, 0, 1L << (SIGPIPE - 1));
        return set;
    }

    /** Takes a pending SIGPIPE of the calling thread, if any, without waiting: true if there was one. */
    private static boolean takePendingSigpipe() throws Throwable {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment zero = a.allocate(16, 8); // struct timespec {0, 0}
            int r = (int) SIGTIMEDWAIT.invokeExact(sigpipeSet(a), MemorySegment.NULL, zero);
            return r == SIGPIPE; // else -1 (EAGAIN: none pending)
        }
    }

    private static int fdOf(Connection c) throws ReflectiveOperationException {
        Field f = TcpConnection.class.getDeclaredField("fd");
        f.setAccessible(true);
        return f.getInt(c);
    }

    /** 3 bytes go out in one {@code send}; 1 MiB spans several chunks and goes out by {@code sendmsg}. */
    @ParameterizedTest
    @ValueSource(ints = {3, 1 << 20})
    void aWriteThatMeetsEpipeRaisesNoSigpipe(int bytes) throws Exception {
        record Outcome(Throwable cause, boolean sigpipe) {}
        var outcome = new CompletableFuture<Outcome>();
        server = Server.bind(group, loopback(0), ServerOptions.defaults(), () -> new ConnectionHandler() {
            @Override
            public void onOpen(Connection c) throws Exception {
                try {
                    sigpipeMask(SIG_BLOCK);
                } catch (Throwable t) {
                    outcome.completeExceptionally(t);
                    throw new AssertionError(t);
                }
                // The user shuts the socket's write side behind the connection's back (its fd is
                // a plain fd): the kernel then answers every send with EPIPE.
                assertEquals(0, Syscalls.current().shutdown(fdOf(c), Syscalls.SHUT_WR), "shutdown");
                c.write(new byte[bytes]); // sent at the end of this callback pass
            }

            @Override
            public void onRead(Connection c, MemorySegment data) {}

            @Override
            public void onClose(Connection c, Throwable cause) {
                try {
                    boolean pending = takePendingSigpipe();
                    sigpipeMask(SIG_UNBLOCK);
                    outcome.complete(new Outcome(cause, pending));
                } catch (Throwable t) {
                    outcome.completeExceptionally(t);
                }
            }
        });
        try (Socket peer = connect(server)) {
            Outcome o = await(outcome);
            var e = assertInstanceOf(SyscallFailure.class, o.cause(), "the " + bytes + "-byte write failed: " + o.cause());
            assertEquals(Errno.EPIPE, e.errno(), String.valueOf(e));
            assertFalse(o.sigpipe(), "a send without MSG_NOSIGNAL raised SIGPIPE on the reactor thread");
            assertNotNull(peer);
        }
    }
}
