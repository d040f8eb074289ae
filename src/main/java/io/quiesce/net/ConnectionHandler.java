package io.quiesce.net;

import java.lang.foreign.MemorySegment;

/**
 * What a {@link Connection} calls. Every method runs on the connection's reactor thread, one call
 * at a time, and must not block. An exception thrown by any method but {@link #onClose} closes
 * this connection, and only this one, with the exception as the cause.
 */
public interface ConnectionHandler {
    /**
     * The connection is established (accepted, or connected). Writes made here are sent when the
     * callback returns.
     *
     * @param connection the connection
     * @throws Exception to close the connection
     */
    default void onOpen(Connection connection) throws Exception {}

    /**
     * Bytes arrived. {@code data} is a view of the reactor's read buffer, valid only until this
     * method returns: copy what you keep. Writes made here are gathered and sent once the
     * connection's read pass is over.
     *
     * @param connection the connection
     * @param data the bytes read (never empty)
     * @throws Exception to close the connection
     */
    void onRead(Connection connection, MemorySegment data) throws Exception;

    /**
     * The queued bytes fell to the low watermark after having passed the high one: writing is
     * welcome again (a reader paused in the meantime may {@link Connection#resumeReading()}).
     *
     * @param connection the connection
     * @throws Exception to close the connection
     */
    default void onWritable(Connection connection) throws Exception {}

    /**
     * The peer shut down its side (end of stream). Writing still works (TCP half-close). The
     * default closes the connection once what is queued has been sent.
     *
     * @param connection the connection
     * @throws Exception to close the connection
     */
    default void onPeerClosed(Connection connection) throws Exception {
        connection.close();
    }

    /**
     * The connection is closed and its fd released; called exactly once, and nothing else is called
     * after it. Not called for a client connection that never opened (its future fails instead).
     *
     * @param connection the connection
     * @param cause why: {@code null} for an orderly close, else the error: a
     *        {@link java.net.SocketException} for a failed socket call (e.g. {@code read:
     *        ECONNRESET}, {@code send: EPIPE}), a {@link java.net.SocketTimeoutException} for an
     *        idle or write-stall timeout (both are {@link io.quiesce.sys.SyscallFailure}s naming the
     *        call and errno), or a handler's exception
     */
    default void onClose(Connection connection, Throwable cause) {}
}
