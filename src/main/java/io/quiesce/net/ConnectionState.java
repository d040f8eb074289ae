package io.quiesce.net;

/**
 * The lifecycle of a {@link TcpConnection} as one int that only moves forward: bits are added and
 * never cleared, so the value only grows. The connection holds the int; this class names its bits
 * and the rules a transition keeps ({@link #forwardOnly}, asserted on every change).
 *
 * <p>No bit: connecting (or accepted, about to open). Then, in the order a connection normally
 * gains them: {@link #OPENED}; the half-closes, each side on its own ({@link #INPUT_ENDED};
 * {@link #OUTPUT_SHUTTING} then {@link #OUTPUT_SHUT}); {@link #CLOSING} then {@link #CLOSED}.
 * {@link #ABORTED} says why the queue was dropped.
 */
final class ConnectionState {
    /** {@code onOpen} ran (accepted, or connected): the close is counted and reported. */
    static final int OPENED = 1;
    /** End of stream read (the peer's FIN). Independent of the output side. */
    static final int INPUT_ENDED = 1 << 1;
    /** {@code shutdownOutput()}: writes are refused; FIN once the queue is drained. */
    static final int OUTPUT_SHUTTING = 1 << 2;
    /** {@code shutdown(SHUT_WR)} done: the FIN is sent, nothing may follow it. */
    static final int OUTPUT_SHUT = 1 << 3;
    /** A close began: reading stopped, writes refused, the queue drains, then the handle closes. */
    static final int CLOSING = 1 << 4;
    /** The handle's close was asked for (or has run): nothing more happens on this connection. */
    static final int CLOSED = 1 << 5;
    /** {@code abort()}: the queue was dropped on purpose, so its loss is not reported. */
    static final int ABORTED = 1 << 6;
    /** Once any of these is set, writes are refused. */
    static final int WRITES_SHUT = OUTPUT_SHUTTING | CLOSING | CLOSED;

    private ConnectionState() {}

    /**
     * {@return whether {@code s -> next} keeps the rules} Nothing is removed; a FIN is sent only
     * after it was asked for, and a close is done only after it began; once closing, nothing opens,
     * reads to the end or starts a half-close; once closed, nothing is aborted.
     */
    static boolean forwardOnly(int s, int next) {
        int added = next & ~s;
        boolean kept = (next & s) == s && next >= s;
        boolean ordered = ((next & OUTPUT_SHUT) == 0 || (next & OUTPUT_SHUTTING) != 0)
                && ((next & CLOSED) == 0 || (next & CLOSING) != 0);
        boolean lateStart = (s & CLOSING) != 0 && (added & (OPENED | INPUT_ENDED | OUTPUT_SHUTTING | OUTPUT_SHUT)) != 0;
        boolean lateAbort = (s & CLOSED) != 0 && (added & ABORTED) != 0;
        return kept && ordered && !lateStart && !lateAbort;
    }
}
