package io.quiesce.reactor;

import java.util.Arrays;
import java.util.function.Consumer;

/**
 * The reactor's handles by slot, with a generation per slot. An event's {@code epoll_data.u64}
 * is a token {@code generation << 32 | slot}, never the fd (mio's tokens): freeing a slot bumps its
 * generation, so an event fetched for a handle that has since been closed, even if the slot or the
 * fd number was reused, names a generation that no longer matches and is dropped. Reactor thread
 * only.
 */
final class HandleTable {
    private Handle[] handles = new Handle[64];
    private int[] generations = new int[64];
    private int[] free = new int[64];
    private int freeCount;
    private int used; // slots ever handed out (high-water mark)
    private int open;

    /** Puts {@code h} in a free slot and sets its slot and generation. */
    void add(Handle h) {
        int slot;
        if (freeCount > 0) {
            slot = free[--freeCount];
        } else {
            if (used == handles.length) {
                handles = Arrays.copyOf(handles, used * 2);
                generations = Arrays.copyOf(generations, used * 2);
            }
            slot = used++;
        }
        handles[slot] = h;
        h.registration.placed(slot, generations[slot]);
        open++;
    }

    /** Frees {@code h}'s slot (identity-checked) and bumps the slot's generation. */
    void remove(Handle h) {
        int slot = h.registration.slot();
        if (slot < 0 || handles[slot] != h) {
            return;
        }
        handles[slot] = null;
        generations[slot]++;
        if (freeCount == free.length) {
            free = Arrays.copyOf(free, free.length * 2);
        }
        free[freeCount++] = slot;
        h.registration.removedFromTable();
        open--;
    }

    /** {@return the open handle an event token names, or null if the token is stale} */
    Handle lookup(long token) {
        int slot = (int) token;
        int generation = (int) (token >>> 32);
        if (slot < 0 || slot >= used) {
            return null;
        }
        Handle h = handles[slot];
        return h != null && h.registration.generation() == generation ? h : null;
    }

    int open() {
        return open;
    }

    /** Calls {@code action} for every handle in the table (a snapshot: it may close them). */
    void forEach(Consumer<Handle> action) {
        Handle[] snapshot = Arrays.copyOf(handles, used);
        for (Handle h : snapshot) {
            if (h != null) {
                action.accept(h);
            }
        }
    }
}
