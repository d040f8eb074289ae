package io.quiesce.net;

import java.time.Duration;

/**
 * Socket options and flow control of a connection.
 *
 * @param tcpNoDelay {@code TCP_NODELAY} (default on: no Nagle delay)
 * @param keepAlive {@code SO_KEEPALIVE} (default off)
 * @param receiveBufferSize {@code SO_RCVBUF} in bytes, 0 for the system default
 * @param sendBufferSize {@code SO_SNDBUF} in bytes, 0 for the system default
 * @param lingerSeconds {@code SO_LINGER}: -1 for off (the default) or 0 (close sends a reset); a
 *        positive linger is refused, as it would block the reactor thread in {@code close}
 * @param readIdleTimeout close with a {@link java.net.SocketTimeoutException} when nothing has been
 *        read for this long; {@link Duration#ZERO} for none (the default)
 * @param writeTimeout close with a {@link java.net.SocketTimeoutException} when queued bytes have
 *        made no progress for this long (a peer that stopped reading); zero for none (the default)
 * @param lowWatermark queued bytes at or below which a connection that was unwritable becomes
 *        writable again (default 32 KiB)
 * @param highWatermark queued bytes above which {@link Connection#isWritable()} is false (default
 *        64 KiB)
 * @param maxQueuedBytes queued bytes past which a write closes the connection (default 64 MiB)
 * @param readBudget bytes read from one connection per wake-up before the others get their turn
 *        (default 256 KiB)
 */
public record ConnectionOptions(boolean tcpNoDelay, boolean keepAlive, int receiveBufferSize,
        int sendBufferSize, int lingerSeconds, Duration readIdleTimeout, Duration writeTimeout,
        int lowWatermark, int highWatermark, long maxQueuedBytes, int readBudget) {

    /** Checks the values. */
    public ConnectionOptions {
        if (receiveBufferSize < 0 || sendBufferSize < 0) {
            throw new IllegalArgumentException("buffer sizes must be >= 0");
        }
        if (lingerSeconds < -1 || lingerSeconds > 0) {
            // A positive SO_LINGER makes close() wait for the peer's ACK, even on a non-blocking
            // socket, and the close runs on the reactor thread: it would stall every connection.
            throw new IllegalArgumentException("lingerSeconds must be -1 (off) or 0 (reset on close): " + lingerSeconds);
        }
        if (readIdleTimeout == null || writeTimeout == null) {
            throw new NullPointerException("timeouts must not be null (use Duration.ZERO)");
        }
        if (readIdleTimeout.isNegative() || writeTimeout.isNegative()) {
            throw new IllegalArgumentException("timeouts must not be negative");
        }
        if (lowWatermark < 0 || highWatermark < lowWatermark || maxQueuedBytes < highWatermark) {
            throw new IllegalArgumentException("need 0 <= lowWatermark <= highWatermark <= maxQueuedBytes: "
                    + lowWatermark + ", " + highWatermark + ", " + maxQueuedBytes);
        }
        if (readBudget < 1) {
            throw new IllegalArgumentException("readBudget must be >= 1: " + readBudget);
        }
    }

    /** {@return the defaults described on the record} */
    public static ConnectionOptions defaults() {
        return new ConnectionOptions(true, false, 0, 0, -1, Duration.ZERO, Duration.ZERO,
                32 * 1024, 64 * 1024, 64L << 20, 256 * 1024);
    }

    /**
     * {@return a copy with {@code TCP_NODELAY} set}
     *
     * @param on the value
     */
    public ConnectionOptions withTcpNoDelay(boolean on) {
        return new ConnectionOptions(on, keepAlive, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
    }

    /**
     * {@return a copy with {@code SO_KEEPALIVE} set}
     *
     * @param on the value
     */
    public ConnectionOptions withKeepAlive(boolean on) {
        return new ConnectionOptions(tcpNoDelay, on, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
    }

    /**
     * {@return a copy with these kernel buffer sizes}
     * @param receive {@code SO_RCVBUF}, 0 for the default
     * @param send {@code SO_SNDBUF}, 0 for the default
     */
    public ConnectionOptions withBufferSizes(int receive, int send) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receive, send, lingerSeconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
    }

    /**
     * {@return a copy with {@code SO_LINGER}}
     *
     * @param seconds -1 for off
     */
    public ConnectionOptions withLinger(int seconds) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, seconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
    }

    /**
     * {@return a copy with these idle timeouts}
     * @param readIdle see {@link #readIdleTimeout()}
     * @param write see {@link #writeTimeout()}
     */
    public ConnectionOptions withTimeouts(Duration readIdle, Duration write) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdle, write, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
    }

    /**
     * {@return a copy with these watermarks}
     * @param low see {@link #lowWatermark()}
     * @param high see {@link #highWatermark()}
     */
    public ConnectionOptions withWatermarks(int low, int high) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdleTimeout, writeTimeout, low, high, Math.max(maxQueuedBytes, high), readBudget);
    }

    /**
     * {@return a copy with this hard queue limit}
     *
     * @param bytes see {@link #maxQueuedBytes()}
     */
    public ConnectionOptions withMaxQueuedBytes(long bytes) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, bytes, readBudget);
    }

    /**
     * {@return a copy with this per-wake read budget}
     *
     * @param bytes see {@link #readBudget()}
     */
    public ConnectionOptions withReadBudget(int bytes) {
        return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, lingerSeconds,
                readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, bytes);
    }
}
