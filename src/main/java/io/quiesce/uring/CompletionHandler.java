package io.quiesce.uring;

/**
 * The owner of ops submitted through a {@link TransportRing}: it is told each of its CQEs, on the
 * ring's thread, with the op kind it put in the token, and, if the ring itself fails, that no
 * further CQE will come.
 */
public interface CompletionHandler {
    /**
     * One CQE of one of this owner's ops.
     *
     * @param op the op kind of the token ({@link TransportRing#token})
     * @param res the CQE's result: a count, an fd, or {@code -errno}
     * @param flags the CQE's flags ({@link Ring#CQE_F_MORE}, {@link Ring#CQE_F_BUFFER}, ...)
     */
    void onCompletion(int op, int res, int flags);

    /**
     * The ring failed and was torn down ({@link TransportRing#abandon}): no CQE of this owner's
     * will come, and every op it has in flight counts as ended (the kernel cancels them with the
     * ring). The owner lets go of what those ops held (its handle's reference above all, so a close
     * waiting for them completes) and submits nothing more.
     */
    void ringLost();
}
