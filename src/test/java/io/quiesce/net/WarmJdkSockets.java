package io.quiesce.net;

import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.net.Socket;

/**
 * Makes the JDK's socket implementation open the one fd it keeps for the life of the JVM (NIO's
 * "pre-close" socket, made on first use of {@code java.net.Socket}), so that {@code NoFdLeaks},
 * registered after this extension, does not take it for a leak of the code under test.
 */
public final class WarmJdkSockets implements BeforeAllCallback {
    private static volatile boolean warm;

    @Override
    public void beforeAll(ExtensionContext context) {
        warm();
    }

    /** Opens that fd now if it is not open yet (for a main that takes fd snapshots). */
    static void warm() {
        if (warm) {
            return;
        }
        try (ServerSocket ss = new ServerSocket(0, 1, java.net.InetAddress.getLoopbackAddress());
             Socket c = new Socket(ss.getInetAddress(), ss.getLocalPort());
             Socket a = ss.accept()) {
            c.shutdownOutput();
            a.getInputStream().read();
            warm = true;
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
