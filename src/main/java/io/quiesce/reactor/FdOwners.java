package io.quiesce.reactor;

import java.util.concurrent.ConcurrentHashMap;

/**
 * Every live handle by fd number, process-wide: a second registration of a number that a live
 * handle owns is refused, since two owners would both close it (and the second close would hit
 * whatever file has the number by then). An entry leaves just before its {@code close(fd)}, so
 * the number cannot be handed out again while the entry is there.
 */
final class FdOwners {
    private static final ConcurrentHashMap<Integer, Handle> OWNERS = new ConcurrentHashMap<>();

    private FdOwners() {}

    /** {@return null if {@code h} now owns its fd number, else the live handle that already does} */
    static Handle claim(Handle h) {
        return OWNERS.putIfAbsent(h.fd(), h);
    }

    /** {@code h} gives its number up (identity-checked: never another handle's entry). */
    static void release(Handle h) {
        OWNERS.remove(h.fd(), h);
    }
}
