package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/** Helpers for tests over real loopback sockets. Every wait is bounded (generously): progress, not speed. */
final class NetTesting {
    static final long WAIT_SECONDS = 30;
    static final int O_CLOEXEC = 0x80000;

    private NetTesting() {}

    static InetSocketAddress loopback(int port) {
        return new InetSocketAddress("127.0.0.1", port);
    }

    /** A blocking client socket whose reads give up after the bounded wait. */
    static Socket connect(Server server) throws IOException {
        Socket s = new Socket();
        s.setSoTimeout((int) TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
        s.connect(loopback(server.port()), (int) TimeUnit.SECONDS.toMillis(WAIT_SECONDS));
        s.setTcpNoDelay(true);
        return s;
    }

    static byte[] readExactly(InputStream in, int n) throws IOException {
        byte[] b = in.readNBytes(n);
        if (b.length != n) {
            fail("expected " + n + " bytes, stream ended after " + b.length);
        }
        return b;
    }

    static void await(CountDownLatch latch) throws InterruptedException {
        assertTrue(latch.await(WAIT_SECONDS, TimeUnit.SECONDS), "timed out waiting for " + latch);
    }

    static <T> T await(Future<T> f) throws Exception {
        return f.get(WAIT_SECONDS, TimeUnit.SECONDS);
    }

    static void eventually(String what, BooleanSupplier condition) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(WAIT_SECONDS);
        while (!condition.getAsBoolean()) {
            if (System.nanoTime() - deadline > 0) {
                fail("never happened: " + what);
            }
            Thread.sleep(5);
        }
    }

    /** Raises the soft fd limit to at least {@code wanted} (capped by the hard limit). */
    static long raiseFileLimit(long wanted) {
        Syscalls s = Syscalls.current();
        long[] lim = new long[2];
        if (TestSyscalls.current().fileLimit(lim) < 0) {
            return -1;
        }
        if (lim[0] < wanted) {
            long soft = lim[1] < 0 ? wanted : Math.min(wanted, lim[1]); // hard < 0: RLIM_INFINITY
            TestSyscalls.current().setFileLimit(soft, lim[1]);
            TestSyscalls.current().fileLimit(lim);
        }
        return lim[0];
    }

    /**
     * Puts a new eventfd where {@code fd} was ({@code dup3}, close-on-exec), so whatever the
     * reactor keeps under that number fails at its next use; the number then names the eventfd,
     * which the reactor closes as its own.
     */
    static void replaceWithEventfd(int fd) throws Throwable {
        int other = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
        assertTrue(other >= 0, "eventfd");
        Linker linker = Linker.nativeLinker();
        MethodHandle dup3 = linker.downcallHandle(linker.defaultLookup().find("dup3").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        int r = (int) dup3.invokeExact(other, fd, O_CLOEXEC);
        Syscalls.current().close(other);
        if (r != fd) {
            fail("dup3 over fd " + fd + " returned " + r);
        }
    }

    /** Wakes {@code r} until its loop has stopped (bounded). */
    static void wakeUntilStopped(Reactor r) throws InterruptedException {
        io.quiesce.reactor.UringTesting.wakeUntilStopped(r);
    }
}
