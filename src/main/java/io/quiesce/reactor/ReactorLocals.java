package io.quiesce.reactor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.concurrent.ConcurrentHashMap;
import java.util.function.Supplier;

/**
 * The per-reactor objects of the layers above: those of {@link ReactorHooks#local}, in creation order,
 * reactor thread only; and those of {@link ReactorHooks#shared}, which any thread may look up (the net
 * layer's counters, read by metrics from the scraping thread) and which are never closed.
 */
final class ReactorLocals {
    private static final System.Logger LOG = System.getLogger(ReactorLocals.class.getName());
    private final LinkedHashMap<Class<?>, Object> locals = new LinkedHashMap<>();
    private final ConcurrentHashMap<Class<?>, Object> shared = new ConcurrentHashMap<>();

    /** Any thread: the shared object of type {@code key}, made once by {@code factory}. */
    <T> T shared(Class<T> key, Supplier<? extends T> factory) {
        return key.cast(shared.computeIfAbsent(key, k -> key.cast(factory.get())));
    }

    <T> T get(Class<T> key, Supplier<? extends T> factory) {
        Object o = locals.get(key);
        if (o == null) {
            o = key.cast(factory.get());
            locals.put(key, o);
        }
        return key.cast(o);
    }

    /** Closes the {@link AutoCloseable} ones in reverse creation order: a later one may use an earlier one. */
    void closeAll() {
        List<Object> made = new ArrayList<>(locals.values());
        for (Object o : made.reversed()) {
            if (o instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    LOG.log(System.Logger.Level.WARNING, "closing per-reactor " + o + " failed", e);
                }
            }
        }
        locals.clear();
    }
}
