package io.quiesce.net;

import java.time.Duration;

/**
 * Socket options and flow control of a connection.
 *
 * @param tcpNoDelay {@code TCP_NODELAY} (default on: no Nagle delay)
 * @param keepAlive {@code SO_KEEPALIVE} (default off)
 * @param receiveBufferSize {@code SO_RCVBUF} in bytes, 0 for the system default
 * @param sendBufferSize {@code SO_SNDBUF} in bytes, 0 for the system default
 * @param resetOnClose {@code SO_LINGER} with a zero timeout: {@code close} sends a reset and
 *        drops unsent data (default off: the kernel's orderly close). A positive linger is not
 *        offered: Linux makes {@code close(2)} wait up to that long for the peer's ACK even on a
 *        non-blocking socket, and the close runs on the reactor thread, which would stall every
 *        connection on it
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
        int sendBufferSize, boolean resetOnClose, Duration readIdleTimeout, Duration writeTimeout,
        int lowWatermark, int highWatermark, long maxQueuedBytes, int readBudget) {

    /** Checks the values. */
    public ConnectionOptions {
        if (receiveBufferSize < 0 || sendBufferSize < 0) {
            throw new IllegalArgumentException("buffer sizes must be >= 0");
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
        return builder().build();
    }

    /** {@return a builder holding the defaults} */
    public static Builder builder() {
        return new Builder();
    }

    /** {@return a builder holding these options} */
    public Builder toBuilder() {
        return new Builder().tcpNoDelay(tcpNoDelay).keepAlive(keepAlive)
                .bufferSizes(receiveBufferSize, sendBufferSize).resetOnClose(resetOnClose)
                .timeouts(readIdleTimeout, writeTimeout).maxQueuedBytes(maxQueuedBytes)
                .watermarks(lowWatermark, highWatermark).readBudget(readBudget);
    }

    /**
     * {@return the {@code SO_LINGER} timeout this sets: -1 for none (the kernel's default), 0 with
     * {@link #resetOnClose()}}
     */
    public int lingerSeconds() {
        return resetOnClose ? 0 : -1;
    }

    /**
     * Collects connection options; {@link #build()} checks them. Not thread-safe. Each setter
     * returns this builder.
     */
    public static final class Builder {
        private boolean tcpNoDelay = true;
        private boolean keepAlive;
        private int receiveBufferSize;
        private int sendBufferSize;
        private boolean resetOnClose;
        private Duration readIdleTimeout = Duration.ZERO;
        private Duration writeTimeout = Duration.ZERO;
        private int lowWatermark = 32 * 1024;
        private int highWatermark = 64 * 1024;
        private long maxQueuedBytes = 64L << 20;
        private int readBudget = 256 * 1024;

        private Builder() {}

        /**
         * {@return this builder}
         *
         * @param on {@link ConnectionOptions#tcpNoDelay()}
         */
        public Builder tcpNoDelay(boolean on) {
            this.tcpNoDelay = on;
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param on {@link ConnectionOptions#keepAlive()}
         */
        public Builder keepAlive(boolean on) {
            this.keepAlive = on;
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param receive {@link ConnectionOptions#receiveBufferSize()}, 0 for the default
         * @param send {@link ConnectionOptions#sendBufferSize()}, 0 for the default
         */
        public Builder bufferSizes(int receive, int send) {
            this.receiveBufferSize = receive;
            this.sendBufferSize = send;
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param on {@link ConnectionOptions#resetOnClose()}
         */
        public Builder resetOnClose(boolean on) {
            this.resetOnClose = on;
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param readIdle {@link ConnectionOptions#readIdleTimeout()}
         * @param write {@link ConnectionOptions#writeTimeout()}
         */
        public Builder timeouts(Duration readIdle, Duration write) {
            this.readIdleTimeout = readIdle;
            this.writeTimeout = write;
            return this;
        }

        /**
         * Sets the watermarks, raising {@link ConnectionOptions#maxQueuedBytes()} to {@code high}
         * if it is below.
         *
         * @return this builder
         * @param low {@link ConnectionOptions#lowWatermark()}
         * @param high {@link ConnectionOptions#highWatermark()}
         */
        public Builder watermarks(int low, int high) {
            this.lowWatermark = low;
            this.highWatermark = high;
            this.maxQueuedBytes = Math.max(maxQueuedBytes, high);
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param bytes {@link ConnectionOptions#maxQueuedBytes()}
         */
        public Builder maxQueuedBytes(long bytes) {
            this.maxQueuedBytes = bytes;
            return this;
        }

        /**
         * {@return this builder}
         *
         * @param bytes {@link ConnectionOptions#readBudget()}
         */
        public Builder readBudget(int bytes) {
            this.readBudget = bytes;
            return this;
        }

        /**
         * {@return the options}
         *
         * @throws IllegalArgumentException if a value is out of range (see the record)
         * @throws NullPointerException if a timeout is null
         */
        public ConnectionOptions build() {
            return new ConnectionOptions(tcpNoDelay, keepAlive, receiveBufferSize, sendBufferSize, resetOnClose,
                    readIdleTimeout, writeTimeout, lowWatermark, highWatermark, maxQueuedBytes, readBudget);
        }
    }
}
