package io.quiesce.net;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.io.IOException;
import java.io.InputStream;
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
}
