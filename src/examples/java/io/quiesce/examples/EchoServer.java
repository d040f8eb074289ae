package io.quiesce.examples;

import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.Server;
import io.quiesce.reactor.ReactorGroup;

import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;

/**
 * {@code make echo}: a TCP echo server on 127.0.0.1:7007 ({@code --port P --threads N}).
 * Prints one line when it is ready and nothing per connection; Ctrl-C or SIGTERM stops it cleanly.
 */
public final class EchoServer {
    /**
     * The whole protocol. One stateless instance serves every connection. A reader that is slower
     * than its writer makes the queue pass the high watermark: stop reading until it drains, so
     * the server never buffers more than the watermark per connection.
     */
    static final ConnectionHandler ECHO = new ConnectionHandler() {
        @Override
        public void onRead(Connection c, MemorySegment data) {
            c.write(data);
            if (!c.isWritable()) {
                c.pauseReading();
            }
        }

        @Override
        public void onWritable(Connection c) {
            c.resumeReading();
        }
    };

    private EchoServer() {}

    public static void main(String[] argv) throws Exception {
        Args args = Args.parse(argv, 7007);
        ReactorGroup group = ReactorGroup.start(args.groupOptions("echo-"));
        Server server = Server.bind(group, new InetSocketAddress("127.0.0.1", args.port()), () -> ECHO);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            server.close();
            group.close();
        }, "echo-shutdown"));
        System.out.println("listening on 127.0.0.1:" + server.port() + " (" + group.size() + " reactors)");
        System.out.flush();
        // The reactor threads keep the JVM alive; the shutdown hook stops them.
    }
}
