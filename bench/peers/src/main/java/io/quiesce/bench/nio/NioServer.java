package io.quiesce.bench.nio;

import io.quiesce.bench.Args;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.InetSocketAddress;
import java.net.StandardProtocolFamily;
import java.net.StandardSocketOptions;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.util.function.Consumer;
import java.util.function.Supplier;

/**
 * Plain JDK NIO server skeleton shared by the NIO peers: {@code --threads} selector threads,
 * each with its own {@link Selector} and its own non-blocking {@link ServerSocketChannel}
 * bound to 127.0.0.1 with SO_REUSEPORT (the kernel spreads connections over the listeners).
 * A thread serves only the connections it accepted. Ready keys are handed over with
 * {@link Selector#select(Consumer)}, which allocates nothing per wakeup.
 */
final class NioServer {

    /** Per-thread protocol logic; its methods run on that thread only. */
    interface Handler {
        /** Configures and registers a freshly accepted channel. */
        void accepted(SocketChannel ch, Selector selector) throws IOException;

        void readable(SelectionKey key) throws IOException;

        void writable(SelectionKey key) throws IOException;

        /** Releases what the handler keeps for a connection that is about to be closed. */
        default void closing(SelectionKey key) {}
    }

    private NioServer() {}

    static void run(Args args, Supplier<Handler> handlers) throws IOException {
        if (args.transport() != Args.Transport.EPOLL) {
            // a run asking for io_uring must not silently measure the JDK's selector instead
            System.err.println("the NIO peers have no --transport: the JDK selector is epoll");
            System.exit(2);
        }
        int port = args.port();
        Loop[] loops = new Loop[args.threads()];
        for (int i = 0; i < loops.length; i++) {
            ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.INET);
            server.setOption(StandardSocketOptions.SO_REUSEADDR, true);
            server.setOption(StandardSocketOptions.SO_REUSEPORT, true);
            server.bind(new InetSocketAddress("127.0.0.1", port), 4096);
            server.configureBlocking(false);
            port = ((InetSocketAddress) server.getLocalAddress()).getPort(); // --port 0: share the first
            loops[i] = new Loop(server, handlers.get());
        }
        Thread[] threads = new Thread[loops.length];
        for (int i = 0; i < loops.length; i++) {
            threads[i] = Thread.ofPlatform().name("nio-" + i).start(loops[i]);
        }
        Args.ready(port, loops.length);
        for (Thread t : threads) {
            try {
                t.join(); // until SIGTERM ends the JVM
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
    }

    private static final class Loop implements Runnable {
        private final ServerSocketChannel server;
        private final Handler handler;
        private final Selector selector;
        private final Consumer<SelectionKey> onReady = this::ready;

        Loop(ServerSocketChannel server, Handler handler) throws IOException {
            this.server = server;
            this.handler = handler;
            this.selector = Selector.open();
            server.register(selector, SelectionKey.OP_ACCEPT);
        }

        @Override
        public void run() {
            try {
                for (;;) selector.select(onReady);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private void ready(SelectionKey key) {
            if (key.channel() == server) {
                acceptAll();
                return;
            }
            try {
                int ops = key.readyOps();
                if ((ops & SelectionKey.OP_WRITE) != 0) handler.writable(key);
                if (key.isValid() && (ops & SelectionKey.OP_READ) != 0) handler.readable(key);
            } catch (IOException e) {
                handler.closing(key);
                close(key); // resets are routine under load; nothing is logged per connection
            }
        }

        private void acceptAll() {
            for (;;) {
                SocketChannel ch;
                try {
                    ch = server.accept();
                } catch (IOException e) {
                    System.err.println("accept: " + e);
                    return;
                }
                if (ch == null) return;
                try {
                    handler.accepted(ch, selector);
                } catch (IOException e) {
                    try {
                        ch.close();
                    } catch (IOException ignored) {
                        // already failing
                    }
                }
            }
        }
    }

    static void close(SelectionKey key) {
        key.cancel();
        try {
            key.channel().close();
        } catch (IOException ignored) {
            // nothing left to do with it
        }
    }

    static void configure(SocketChannel ch) throws IOException {
        ch.configureBlocking(false);
        ch.setOption(StandardSocketOptions.TCP_NODELAY, true);
    }
}
