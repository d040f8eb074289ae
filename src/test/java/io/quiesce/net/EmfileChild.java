package io.quiesce.net;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.concurrent.CountDownLatch;

/**
 * The server of {@link EmfileTest}, run in a child JVM with a low fd limit: an echo server that
 * prints {@code ready <port>}, then answers each {@code stats} line on stdin with its accept
 * counters, its stopped reactors and its handler failures, parks its reactors on {@code hold}
 * until {@code go}, and stops at end of input.
 */
public final class EmfileChild {
    private EmfileChild() {}

    private static String format(ReactorGroup group, ServerStats s) {
        int stopped = 0;
        long handlerFailures = 0;
        for (int i = 0; i < group.size(); i++) {
            Reactor r = group.reactor(i);
            stopped += r.terminationFuture().isDone() ? 1 : 0;
            handlerFailures += r.stats().get(ReactorStats.Counter.HANDLER_FAILURES);
        }
        return "accepted=" + s.accepted() + " fdExhaustion=" + s.fdExhaustion() + " backingOff=" + s.backingOff()
                + " stoppedReactors=" + stopped + " handlerFailures=" + handlerFailures;
    }

    /**
     * Parks every reactor in a task until the returned latch opens: the connections that arrive
     * meanwhile wait in the kernel (on io_uring, until the reactor next enters the ring, which then
     * accepts them all at once), so the first connection is taken on with no fd left.
     */
    private static CountDownLatch hold(ReactorGroup group) throws InterruptedException {
        CountDownLatch release = new CountDownLatch(1);
        CountDownLatch parked = new CountDownLatch(group.size());
        for (int i = 0; i < group.size(); i++) {
            group.reactor(i).execute(() -> {
                parked.countDown();
                try {
                    release.await();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                }
            });
        }
        parked.await();
        return release;
    }

    public static void main(String[] args) throws Exception {
        CountDownLatch held = new CountDownLatch(0);
        try (ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2));
             Server server = Server.bind(group, NetTesting.loopback(0), EchoTest.Echo::new)) {
            // Load every class the stats answer needs now: under EMFILE the JVM could not open
            // a class file to load one.
            format(group, server.stats());
            System.out.println("ready " + server.port() + " io=" + group.reactor(0).io());
            System.out.flush();
            var in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.equals("stats")) {
                    System.out.println(format(group, server.stats()));
                } else if (line.equals("hold")) {
                    held = hold(group);
                    System.out.println("held");
                } else if (line.equals("go")) {
                    held.countDown();
                    System.out.println("going");
                }
                System.out.flush();
            }
        }
    }
}
