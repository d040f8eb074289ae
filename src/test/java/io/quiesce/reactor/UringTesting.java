package io.quiesce.reactor;

import io.quiesce.uring.TransportRing;

/** Test access to how reactors build their io_uring transport ring (a reactor reads it when its thread starts), and to stopping one. */
public final class UringTesting {
    private UringTesting() {}

    /** Sets the options reactors started from now on use (null: the group's); {@return the previous ones, to restore} */
    public static TransportRing.Options transportOptions(TransportRing.Options options) {
        TransportRing.Options before = Reactor.transportOptions;
        Reactor.transportOptions = options;
        return before;
    }

    /** Wakes {@code r} (a task each 10 ms, bounded to 5 s) until its loop has stopped. */
    public static void wakeUntilStopped(Reactor r) throws InterruptedException {
        for (int i = 0; i < 500 && !r.terminationFuture().isDone(); i++) {
            try {
                r.execute(() -> {});
            } catch (java.util.concurrent.RejectedExecutionException stopped) {
                return;
            }
            Thread.sleep(10);
        }
    }
}
