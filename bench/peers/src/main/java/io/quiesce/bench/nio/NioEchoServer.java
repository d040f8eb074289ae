package io.quiesce.bench.nio;

import io.quiesce.bench.Args;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;

/**
 * Plain JDK NIO echo server. Each selector thread reads into one direct buffer of its own
 * and writes the bytes straight back. Only when a write comes up short are the remaining
 * bytes copied into a pooled direct buffer attached to the key; the key then waits for
 * OP_WRITE instead of OP_READ until they are gone.
 */
public final class NioEchoServer {

    static final int BUF = 64 * 1024;

    static final class Echo implements NioServer.Handler {
        private final ByteBuffer buf = ByteBuffer.allocateDirect(BUF);
        private final BufferPool pending = new BufferPool(BUF);

        @Override
        public void accepted(SocketChannel ch, Selector selector) throws IOException {
            NioServer.configure(ch);
            ch.register(selector, SelectionKey.OP_READ);
        }

        @Override
        public void readable(SelectionKey key) throws IOException {
            SocketChannel ch = (SocketChannel) key.channel();
            for (;;) {
                buf.clear();
                int n = ch.read(buf);
                if (n < 0) {
                    closing(key);
                    NioServer.close(key);
                    return;
                }
                if (n == 0) return;
                buf.flip();
                ch.write(buf);
                if (buf.hasRemaining()) {
                    ByteBuffer rest = pending.take();
                    rest.put(buf).flip();
                    key.attach(rest);
                    key.interestOps(SelectionKey.OP_WRITE);
                    return;
                }
                if (n < BUF) return; // short read: the socket is drained (the selector is level-triggered anyway)
            }
        }

        @Override
        public void writable(SelectionKey key) throws IOException {
            ByteBuffer rest = (ByteBuffer) key.attachment();
            if (rest == null) return;
            SocketChannel ch = (SocketChannel) key.channel();
            ch.write(rest);
            if (!rest.hasRemaining()) {
                key.attach(null);
                pending.give(rest);
                key.interestOps(SelectionKey.OP_READ);
            }
        }

        @Override
        public void closing(SelectionKey key) {
            if (key.attachment() instanceof ByteBuffer rest) {
                key.attach(null);
                pending.give(rest);
            }
        }
    }

    public static void main(String[] argv) throws IOException {
        NioServer.run(Args.parse("NioEchoServer", 9000, argv), Echo::new);
    }
}
