package io.quiesce.net;

import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;

/**
 * The server of {@link AcceptedRegistrationFailureTest}, in a child JVM: an echo server on one
 * reactor, beside a handle whose fd was closed behind its back (a user's bug), so the fd number is
 * free in the kernel while the handle still owns it. The next socket the listener accepts gets
 * that number, and registering it fails. Prints {@code ready <port> <fd> io=<io>}, answers each
 * {@code stats} line on stdin, and on {@code release} closes the stale handle (over a dup of a
 * pipe end put on its number, so its {@code close} closes nothing of anyone else's).
 */
public final class StaleClaimChild {
    private StaleClaimChild() {}

    private static String format(ReactorGroup group, Server server) {
        Reactor r = group.reactor(0);
        ServerStats s = server.stats();
        return "accepted=" + s.accepted() + " acceptErrors=" + s.acceptErrors()
                + " stoppedReactors=" + (r.terminationFuture().isDone() ? 1 : 0)
                + " handlerFailures=" + r.stats().get(ReactorStats.Counter.HANDLER_FAILURES);
    }

    /** Waits (bounded) until an epoll instance of this process watches {@code fd}, as its fdinfo says. */
    private static void awaitInEpoll(int fd) throws Exception {
        Pattern watched = Pattern.compile("(?m)^tfd:\\s+" + fd + "\\s");
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(NetTesting.WAIT_SECONDS);
        while (System.nanoTime() - deadline < 0) {
            try (DirectoryStream<Path> fds = Files.newDirectoryStream(Path.of("/proc/self/fd"))) {
                for (Path p : fds) {
                    try {
                        if (Files.readSymbolicLink(p).toString().equals("anon_inode:[eventpoll]")
                                && watched.matcher(Files.readString(Path.of("/proc/self/fdinfo", p.getFileName().toString()))).find()) {
                            return;
                        }
                    } catch (IOException gone) {
                        // closed meanwhile (the directory stream's own fd, for one)
                    }
                }
            }
            Thread.sleep(5);
        }
        throw new IllegalStateException("fd " + fd + " never showed up in an epoll instance");
    }

    public static void main(String[] args) throws Exception {
        TestSyscalls sys = TestSyscalls.current();
        Syscalls raw = Syscalls.current();
        try (ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
             Server server = Server.bind(group, NetTesting.loopback(0), EchoTest.Echo::new)) {
            format(group, server); // its classes loaded now: a class file opened later could take the stale number
            int[] pipe = new int[2];
            if (sys.pipe(pipe, TestSyscalls.O_NONBLOCK) < 0) {
                throw new IllegalStateException("pipe2 failed");
            }
            int stale = pipe[0];
            Handle h = group.reactor(0).register(stale, Interest.READ, new EventHandler() {
                @Override public void onEvent(Handle handle, int ready) {}
            });
            awaitInEpoll(stale); // else its EPOLL_CTL_ADD could come after the close below, fail, and close the handle
            raw.close(stale); // behind the handle's back: the lowest free number, still owned
            System.out.println("ready " + server.port() + " " + stale + " io=" + group.reactor(0).io());
            System.out.flush();
            var in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.equals("stats")) {
                    System.out.println(format(group, server));
                } else if (line.equals("release")) {
                    int d = sys.fcntl(pipe[1], TestSyscalls.F_DUPFD_CLOEXEC, stale);
                    h.close();
                    h.closeFuture().get();
                    if (d != stale && d >= 0) {
                        raw.close(d);
                    }
                    System.out.println("released " + (d == stale));
                }
                System.out.flush();
            }
            raw.close(pipe[1]);
        }
    }
}
