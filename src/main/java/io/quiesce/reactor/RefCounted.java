package io.quiesce.reactor;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * The one-{@code int} state machine behind a {@link Handle}: a state (OPEN, CLOSING, CLOSED) and
 * a reference count, changed together by CAS and only ever forward (STYLE habit 6). It knows
 * nothing of reactors, epoll or fds, so that it can be model-checked on its own; the two moments
 * its owner must act on are hooks.
 *
 * <ul>
 *   <li>OPEN with a count of at least 1 (the owner's reference): {@link #tryRetain()} adds one.</li>
 *   <li>{@link #beginClose()}: OPEN → CLOSING, dropping the owner's reference in the same CAS;
 *       from then on {@code tryRetain} fails.</li>
 *   <li>{@link #release()} that drops the last reference of a CLOSING object calls
 *       {@link #lastReferenceDropped()} once.</li>
 *   <li>{@link #tryMarkClosed()}: CLOSING with no reference → CLOSED, true exactly once; only then
 *       may the owner release the resource.</li>
 * </ul>
 */
abstract class RefCounted {
    static final int OPEN = 0;
    static final int CLOSING = 1 << 30;
    static final int CLOSED = 2 << 30;
    private static final int STATE_MASK = 3 << 30;
    private static final int COUNT_MASK = ~STATE_MASK;
    private static final VarHandle STATE;

    static {
        try {
            STATE = MethodHandles.lookup().findVarHandle(RefCounted.class, "stateAndCount", int.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    @SuppressWarnings("unused") // changed through STATE
    private volatile int stateAndCount = OPEN | 1;

    /** Called by the {@link #release()} that drops the last reference once CLOSING; any thread. */
    abstract void lastReferenceDropped();

    /** {@return whether the handle is open (not yet closing)} */
    public boolean isOpen() {
        return ((int) STATE.getVolatile(this) & STATE_MASK) == OPEN;
    }

    /** {@return the number of references held, the owner's included (0 once the owner closed)} */
    public int references() {
        return (int) STATE.getVolatile(this) & COUNT_MASK;
    }

    /**
     * Takes a reference, so the fd cannot be released until {@link #release()}.
     *
     * @return true if taken; false once the handle is closing
     */
    public boolean tryRetain() {
        int s;
        do {
            s = (int) STATE.getVolatile(this);
            if ((s & STATE_MASK) != OPEN) {
                return false;
            }
            if ((s & COUNT_MASK) == COUNT_MASK) {
                throw new IllegalStateException("reference count overflow");
            }
        } while (!STATE.compareAndSet(this, s, s + 1));
        return true;
    }

    /**
     * Drops a reference taken by {@link #tryRetain()}.
     *
     * @throws IllegalStateException if no reference is held
     */
    public void release() {
        int s;
        do {
            s = (int) STATE.getVolatile(this);
            if ((s & COUNT_MASK) == 0) {
                throw new IllegalStateException("release without a reference");
            }
        } while (!STATE.compareAndSet(this, s, s - 1));
        if ((s & COUNT_MASK) == 1 && (s & STATE_MASK) == CLOSING) {
            lastReferenceDropped();
        }
    }

    /** OPEN → CLOSING, dropping the owner's reference in the same CAS; true for the one call that did it. */
    final boolean beginClose() {
        int s;
        do {
            s = (int) STATE.getVolatile(this);
            if ((s & STATE_MASK) != OPEN) {
                return false;
            }
        } while (!STATE.compareAndSet(this, s, CLOSING | ((s & COUNT_MASK) - 1)));
        return true;
    }

    /** CLOSING with no reference left → CLOSED; true exactly once, and only with no reference held. */
    final boolean tryMarkClosed() {
        return STATE.compareAndSet(this, CLOSING, CLOSED);
    }

    /** {@return "open", "closing" or "closed", with the count} */
    final String stateString() {
        int s = (int) STATE.getVolatile(this);
        String state = switch (s & STATE_MASK) {
            case OPEN -> "open";
            case CLOSING -> "closing";
            default -> "closed";
        };
        return state + ", refs=" + (s & COUNT_MASK);
    }
}
