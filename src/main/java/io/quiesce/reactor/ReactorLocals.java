package io.quiesce.reactor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.function.Supplier;

/** The per-reactor objects of the layers above ({@link Reactor#local}), in creation order. Reactor thread only. */
final class ReactorLocals {
    private static final System.Logger LOG = System.getLogger(ReactorLocals.class.getName());
    private final LinkedHashMap<Class<?>, Object> locals = new LinkedHashMap<>();

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
