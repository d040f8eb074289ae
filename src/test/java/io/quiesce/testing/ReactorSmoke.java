package io.quiesce.testing;

import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;

import java.time.Duration;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

/** A child JVM's program for tests of how Quiesce runs: a reactor group, one event, one close. */
public final class ReactorSmoke {
    public static void main(String[] args) throws Exception {
        try (var group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1))) {
            var seen = new CountDownLatch(1);
            Handle h = group.next().register(Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK),
                    Interest.READ, (x, r) -> seen.countDown());
            var attached = new CountDownLatch(1);
            group.next().execute(() -> group.next().execute(attached::countDown));
            attached.await();
            Syscalls.current().eventfdWrite(h.fd(), 1);
            if (!seen.await(20, TimeUnit.SECONDS)) {
                throw new AssertionError("no event");
            }
            h.close(Duration.ofSeconds(10));
            System.out.println("reactor ok without micrometer");
        }
    }
}
