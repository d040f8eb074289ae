package io.quiesce.uring;

/**
 * The owner of ops submitted through a {@link TransportRing}: it is told each of its CQEs, on the
 * ring's thread, with the op kind it put in the token.
 */
@FunctionalInterface
public interface CompletionHandler {
    /**
     * One CQE of one of this owner's ops.
     *
     * @param op the op kind of the token ({@link TransportRing#token})
     * @param res the CQE's result: a count, an fd, or {@code -errno}
     * @param flags the CQE's flags ({@link Ring#CQE_F_MORE}, {@link Ring#CQE_F_BUFFER}, ...)
     */
    void onCompletion(int op, int res, int flags);
}
