package io.quiesce.reactor;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.testing.FdSnapshot;
import org.junit.jupiter.api.RepeatedTest;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Registrations and tasks racing a group's close: each registration either fails cleanly (the fd
 * stays the caller's) or yields a handle that gets closed; no task handed to a reactor is lost and
 * no fd is leaked.
 */
class ShutdownRaceTest {
    @RepeatedTest(10)
    void registrationsRacingGroupCloseLeakNothing() throws Exception {
        FdSnapshot before = FdSnapshot.take();
        var group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("shutdown-race-"));
        var handles = new ConcurrentLinkedQueue<Handle>();
        var ranOrRejected = new java.util.concurrent.atomic.AtomicInteger();
        var accepted = new java.util.concurrent.atomic.AtomicInteger();
        var start = new CountDownLatch(1);
        List<Thread> threads = new ArrayList<>();
        for (int t = 0; t < 4; t++) {
            threads.add(Thread.ofPlatform().start(() -> {
                try {
                    start.await();
                } catch (InterruptedException e) {
                    return;
                }
                for (int i = 0; i < 200; i++) {
                    int fd = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
                    try {
                        handles.add(group.next().register(fd, Interest.READ, (h, r) -> {}));
                    } catch (ClosedHandleException e) {
                        Syscalls.current().close(fd); // refused: still ours to close
                    }
                    try {
                        group.next().execute(ranOrRejected::incrementAndGet);
                        accepted.incrementAndGet();
                    } catch (RejectedExecutionException e) {
                        // the door was shut: fine, as long as no accepted task is lost
                    }
                }
            }));
        }
        start.countDown();
        Thread.sleep(1); // let some registrations in before the close
        group.close(Duration.ofSeconds(20));
        for (Thread t : threads) {
            t.join();
        }
        for (Handle h : handles) {
            h.closeFuture().get(10, TimeUnit.SECONDS);
        }
        assertEquals(accepted.get(), ranOrRejected.get(), "every accepted task ran");
        assertEquals(java.util.Map.of(), FdSnapshot.take().newSince(before), "leaked fds");
    }
}
