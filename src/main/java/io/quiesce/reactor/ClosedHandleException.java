package io.quiesce.reactor;

/** An operation was asked of a {@link Handle} (or reactor) that is closing or closed. */
public class ClosedHandleException extends IllegalStateException {
    private static final long serialVersionUID = 1L;

    /**
     * Makes the exception.
     *
     * @param message what was asked of what
     */
    public ClosedHandleException(String message) {
        super(message);
    }
}
