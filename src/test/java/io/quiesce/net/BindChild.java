package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.SyscallFailure;

import java.net.BindException;

/**
 * The other process of {@link PortBindingTest}: binds a Quiesce server (two reactors, default
 * options) to the port given as its argument and prints {@code bound}, or
 * {@code refused <type> <call> <errno>} for a {@link BindException}.
 */
public final class BindChild {
    private BindChild() {}

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        try (ReactorGroup group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2))) {
            try (Server server = Server.bind(group, NetTesting.loopback(port), EchoTest.Echo::new)) {
                System.out.println("bound " + server.listeners());
            } catch (BindException e) {
                var f = (SyscallFailure) e;
                System.out.println("refused " + e.getClass().getSuperclass().getName() + " " + f.call() + " "
                        + f.errnoName());
            }
        }
    }
}
