package io.quiesce.net;

import io.quiesce.reactor.Reactor;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.util.concurrent.CompletableFuture;

/**
 * One TCP connection on a reactor. See the package documentation for the threading rules: all
 * methods may be called from any thread; handler callbacks run on {@link #reactor()}'s thread.
 *
 * <p><b>Writing.</b> {@link #write} copies the bytes into the connection's queue and returns at
 * once; the reactor sends them (one {@code send}, or one gathering {@code sendmsg} when several
 * buffers are queued). When the queue passes the high watermark {@link #isWritable()} turns false;
 * when it drains to the low watermark it turns true again and {@link ConnectionHandler#onWritable}
 * is called. A writer that ignores this and queues past {@link ConnectionOptions#maxQueuedBytes()}
 * has its connection closed, so a slow reader can never make the process buffer without bound.
 *
 * <p><b>Closing.</b> {@link #shutdownOutput()} sends FIN once the queue is flushed and reading
 * goes on; {@link #close()} stops reading, flushes, and closes; {@link #abort()} closes at once
 * with a reset. Once both directions have ended the connection closes by itself.
 */
public sealed interface Connection permits TcpConnection {
    /** {@return the reactor this connection belongs to for its whole life} */
    Reactor reactor();

    /**
     * Queues a copy of {@code data}.
     *
     * @param data the bytes
     * @return false if nothing was queued: the output is shut down or the connection closed
     */
    boolean write(MemorySegment data);

    /**
     * Queues a copy of {@code data}.
     *
     * @param data the bytes
     * @return false if nothing was queued: the output is shut down or the connection closed
     */
    boolean write(byte[] data);

    /**
     * Queues a copy of {@code data[offset, offset + length)}.
     *
     * @param data the array
     * @param offset first byte
     * @param length number of bytes
     * @return false if nothing was queued: the output is shut down or the connection closed
     */
    boolean write(byte[] data, int offset, int length);

    /** {@return whether the queue is below the high watermark (write without worry)} */
    boolean isWritable();

    /** {@return bytes queued and not yet accepted by the kernel} */
    long queuedBytes();

    /**
     * Stops delivering reads until {@link #resumeReading()}; bytes stay in the kernel (and TCP
     * flow control slows the peer). No epoll change is made.
     */
    void pauseReading();

    /** Delivers reads again, starting with whatever arrived while paused. */
    void resumeReading();

    /** Sends FIN after the queued bytes (half-close); reading goes on. Later writes return false. */
    void shutdownOutput();

    /**
     * Stops reading, sends what is queued, then closes. If the queue cannot drain (the peer does
     * not read) the connection is aborted after {@link ConnectionOptions#writeTimeout()}, or 30
     * seconds if that is not set.
     */
    void close();

    /** Closes at once, dropping what is queued; the peer sees a reset ({@code SO_LINGER} 0). */
    void abort();

    /** {@return whether the connection is neither closing nor closed} */
    boolean isOpen();

    /**
     * {@return a future completed after the fd has been released and {@code onClose} has run} It
     * completes on the reactor thread (unless the reactor has exited), so what {@code thenRun}
     * and friends attach runs there and must not block; several dependents run in an order
     * {@code CompletableFuture} leaves unspecified (today the most recently added first): chain
     * them where the order matters.
     */
    CompletableFuture<Void> closeFuture();

    /**
     * {@return the peer's address}
     *
     * @throws IllegalStateException once closed
     */
    InetSocketAddress remoteAddress();

    /**
     * {@return this end's address}
     *
     * @throws IllegalStateException once closed
     */
    InetSocketAddress localAddress();
}
