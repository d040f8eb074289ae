package io.quiesce.reactor;

/**
 * What a {@link Handle} calls when its fd is ready. Runs on the handle's reactor thread only,
 * one call at a time; it must not block.
 */
@FunctionalInterface
public interface EventHandler {
    /**
     * The fd is ready.
     *
     * @param handle the handle whose fd is ready (open, and owned by the calling reactor)
     * @param ready the ready set: {@link Interest} bits as the kernel reported them, which may
     *        include {@link Interest#HANGUP} and {@link Interest#ERROR} even when not asked for
     * @throws Exception anything: the reactor closes this handle (passing the exception to
     *         {@link #onClose}) and goes on with the others
     */
    void onEvent(Handle handle, int ready) throws Exception;

    /**
     * The handle is closed: the fd has been removed from epoll and released. Called once, on
     * the reactor thread, just before the close future completes; no {@link #onEvent} follows.
     *
     * @param handle the closed handle ({@link Handle#fd()} may already name another file)
     * @param cause why it was closed: what a handler threw, or {@code null} for a plain close
     */
    default void onClose(Handle handle, Throwable cause) {}
}
