package io.quiesce.bench.nio;

import io.quiesce.bench.Args;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.SelectionKey;
import java.nio.channels.Selector;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;

/**
 * Plain JDK NIO HTTP/1.1 plaintext server: {@code GET /plaintext} and {@code GET /} answer
 * {@code Hello, World!} as text/plain with a Content-Length (the same bytes the Netty peer
 * sends); any other GET is a 404. Keep-alive unless the request says {@code Connection:
 * close} (or is HTTP/1.0 without keep-alive); pipelined requests are answered in order with
 * one write per read. Requests with a body (Content-Length other than 0, Transfer-Encoding)
 * get a 400 and the connection is closed: this is a benchmark peer, not a general server.
 *
 * <p>Each selector thread owns one direct input and one direct output buffer. A connection
 * holds a buffer of its own only while it has a partial request (input) or a response the
 * socket would not take at once (output); those come from per-thread pools.
 */
public final class NioHttpServer {

    static final int IN = 16 * 1024;
    static final int OUT = 64 * 1024;

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    private static final String TEXT = "content-type: text/plain\r\n";
    static final byte[] OK = ascii("HTTP/1.1 200 OK\r\n" + TEXT + "content-length: 13\r\n\r\nHello, World!");
    static final byte[] OK_CLOSE = ascii("HTTP/1.1 200 OK\r\n" + TEXT
            + "content-length: 13\r\nconnection: close\r\n\r\nHello, World!");
    static final byte[] NOT_FOUND = ascii("HTTP/1.1 404 Not Found\r\n" + TEXT + "content-length: 9\r\n\r\nNot Found");
    static final byte[] NOT_FOUND_CLOSE = ascii("HTTP/1.1 404 Not Found\r\n" + TEXT
            + "content-length: 9\r\nconnection: close\r\n\r\nNot Found");
    static final byte[] BAD_REQUEST = ascii("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    static final byte[] TOO_LARGE = ascii(
            "HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    static final int MAX_RESPONSE = 128;

    private static final byte[] GET = ascii("GET ");
    private static final byte[] PLAINTEXT = ascii("/plaintext");
    private static final byte[] HTTP_1_0 = ascii("HTTP/1.0");
    private static final byte[] H_CONNECTION = ascii("connection:");
    private static final byte[] H_CONTENT_LENGTH = ascii("content-length:");
    private static final byte[] H_TRANSFER_ENCODING = ascii("transfer-encoding:");
    private static final byte[] V_CLOSE = ascii("close");
    private static final byte[] V_KEEP_ALIVE = ascii("keep-alive");

    /** Per-connection state: buffers only while needed. */
    static final class Conn {
        ByteBuffer in;   // unparsed input, write mode (position = bytes held)
        ByteBuffer out;  // unwritten output, read mode
        boolean closeAfterWrite;
    }

    static final class Http implements NioServer.Handler {
        private final ByteBuffer rbuf = ByteBuffer.allocateDirect(IN);
        private final ByteBuffer wbuf = ByteBuffer.allocateDirect(OUT);
        private final BufferPool inPool = new BufferPool(IN);
        private final BufferPool outPool = new BufferPool(OUT);

        @Override
        public void accepted(SocketChannel ch, Selector selector) throws IOException {
            NioServer.configure(ch);
            ch.register(selector, SelectionKey.OP_READ, new Conn());
        }

        @Override
        public void readable(SelectionKey key) throws IOException {
            Conn c = (Conn) key.attachment();
            SocketChannel ch = (SocketChannel) key.channel();
            ByteBuffer in = c.in != null ? c.in : rbuf.clear();
            int n = ch.read(in);
            if (n < 0) {
                closeNow(key);
                return;
            }
            if (n == 0) return;
            process(key, c, ch, in.flip());
        }

        @Override
        public void writable(SelectionKey key) throws IOException {
            Conn c = (Conn) key.attachment();
            if (c.out == null) return;
            SocketChannel ch = (SocketChannel) key.channel();
            ch.write(c.out);
            if (c.out.hasRemaining()) return;
            outPool.give(c.out);
            c.out = null;
            if (c.closeAfterWrite) {
                closeNow(key);
                return;
            }
            key.interestOps(SelectionKey.OP_READ);
            if (c.in != null) process(key, c, ch, c.in.flip()); // requests held back while output was full
        }

        @Override
        public void closing(SelectionKey key) {
            Conn c = (Conn) key.attachment();
            if (c.in != null) inPool.give(c.in);
            if (c.out != null) outPool.give(c.out);
            c.in = c.out = null;
        }

        private void closeNow(SelectionKey key) {
            closing(key);
            NioServer.close(key);
        }

        /** Answers every complete request in {@code in} (read mode), then keeps the rest. */
        private void process(SelectionKey key, Conn c, SocketChannel ch, ByteBuffer in) throws IOException {
            boolean more;
            do {
                wbuf.clear();
                more = respond(in, wbuf, c);
                wbuf.flip();
                ch.write(wbuf);
                if (wbuf.hasRemaining()) {
                    c.out = outPool.take();
                    c.out.put(wbuf).flip();
                    keepInput(c, in);
                    key.interestOps(SelectionKey.OP_WRITE); // no reading until the peer catches up
                    return;
                }
                if (c.closeAfterWrite) {
                    closeNow(key);
                    return;
                }
            } while (more);
            keepInput(c, in);
            if (c.in != null && !c.in.hasRemaining()) { // a full buffer without one complete request
                wbuf.clear();
                wbuf.put(TOO_LARGE).flip();
                ch.write(wbuf);
                closeNow(key);
            }
        }

        private void keepInput(Conn c, ByteBuffer in) {
            if (in == rbuf) {
                if (in.hasRemaining()) {
                    c.in = inPool.take();
                    c.in.put(in);
                }
            } else if (in.hasRemaining()) {
                in.compact();
            } else {
                inPool.give(in);
                c.in = null;
            }
        }
    }

    /**
     * Writes the responses to the complete requests at the front of {@code in} into
     * {@code out}, consuming them. Returns true when it stopped because {@code out} is full
     * while requests may remain.
     */
    static boolean respond(ByteBuffer in, ByteBuffer out, Conn c) {
        for (;;) {
            int start = in.position();
            int limit = in.limit();
            boolean hello = false;
            boolean http10 = false;
            boolean close = false;
            boolean keepAlive = false;
            boolean bad = false;
            int end = -1;
            int lineStart = start;
            for (int i = start; i + 1 < limit; i++) {
                if (in.get(i) != '\r' || in.get(i + 1) != '\n') continue;
                if (i == lineStart) {
                    end = i + 2;
                    break;
                }
                if (lineStart == start) { // request line: GET <path> HTTP/1.x
                    if (startsWith(in, start, i, GET, false)) {
                        int p = start + GET.length;
                        int q = p;
                        while (q < i && in.get(q) != ' ' && in.get(q) != '?') q++;
                        hello = (q - p == 1 && in.get(p) == '/')
                                || (q - p == PLAINTEXT.length && startsWith(in, p, q, PLAINTEXT, false));
                    }
                    http10 = i - HTTP_1_0.length >= start && startsWith(in, i - HTTP_1_0.length, i, HTTP_1_0, false);
                } else {
                    byte first = (byte) (in.get(lineStart) | 0x20);
                    if (first == 'c') {
                        if (startsWith(in, lineStart, i, H_CONNECTION, true)) {
                            close |= contains(in, lineStart + H_CONNECTION.length, i, V_CLOSE);
                            keepAlive |= contains(in, lineStart + H_CONNECTION.length, i, V_KEEP_ALIVE);
                        } else if (startsWith(in, lineStart, i, H_CONTENT_LENGTH, true)) {
                            for (int k = lineStart + H_CONTENT_LENGTH.length; k < i; k++) {
                                byte b = in.get(k);
                                if (b != ' ' && b != '\t' && b != '0') bad = true;
                            }
                        }
                    } else if (first == 't' && startsWith(in, lineStart, i, H_TRANSFER_ENCODING, true)) {
                        bad = true;
                    }
                }
                lineStart = i + 2;
                i++;
            }
            if (end < 0) return false; // no complete request left
            if (out.remaining() < MAX_RESPONSE) return true;
            in.position(end);
            if (bad) {
                out.put(BAD_REQUEST);
                c.closeAfterWrite = true;
                return false;
            }
            if (http10 && !keepAlive) close = true;
            out.put(hello ? (close ? OK_CLOSE : OK) : (close ? NOT_FOUND_CLOSE : NOT_FOUND));
            if (close) {
                c.closeAfterWrite = true;
                return false;
            }
        }
    }

    private static boolean startsWith(ByteBuffer b, int from, int to, byte[] prefix, boolean ignoreCase) {
        if (to - from < prefix.length) return false;
        for (int k = 0; k < prefix.length; k++) {
            byte x = b.get(from + k);
            if (ignoreCase) x = lower(x);
            if (x != prefix[k]) return false;
        }
        return true;
    }

    private static boolean contains(ByteBuffer b, int from, int to, byte[] word) {
        for (int s = from; s + word.length <= to; s++) {
            int k = 0;
            while (k < word.length && lower(b.get(s + k)) == word[k]) k++;
            if (k == word.length) return true;
        }
        return false;
    }

    private static byte lower(byte x) {
        return x >= 'A' && x <= 'Z' ? (byte) (x | 0x20) : x;
    }

    public static void main(String[] argv) throws IOException {
        NioServer.run(Args.parse("NioHttpServer", 8080, argv), Http::new);
    }
}
