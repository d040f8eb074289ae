package io.quiesce.reactor;

import io.quiesce.uring.TransportRing;

/** Test access to how reactors build their io_uring transport ring (a reactor reads it when its thread starts). */
public final class UringTesting {
    private UringTesting() {}

    /** Sets the options reactors started from now on use (null: the group's); {@return the previous ones, to restore} */
    public static TransportRing.Options transportOptions(TransportRing.Options options) {
        TransportRing.Options before = Reactor.transportOptions;
        Reactor.transportOptions = options;
        return before;
    }
}
