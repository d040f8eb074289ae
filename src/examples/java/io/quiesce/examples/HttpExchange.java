package io.quiesce.examples;

import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.reactor.ScheduledTask;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

import static io.quiesce.examples.HttpServer.MAX_BODY_BYTES;
import static io.quiesce.examples.HttpServer.MAX_HEADER_BYTES;
import static io.quiesce.examples.HttpSyntax.*;

/**
 * The HTTP/1.1 state of one {@link HttpServer} connection: parses the requests in each read and
 * answers them in order, all the responses to one read in one write. Runs on its reactor thread
 * only.
 */
final class HttpExchange implements ConnectionHandler {
    private static final byte[] GET = ascii("GET");
    private static final byte[] HEAD = ascii("HEAD");
    private static final byte[] HTTP_1 = ascii("HTTP/1.");
    private static final byte[] PLAINTEXT = ascii("/plaintext");
    private static final byte[] METRICS = ascii("/metrics");
    private static final byte[] HOST = ascii("host");
    private static final byte[] CONNECTION = ascii("connection");
    private static final byte[] CLOSE = ascii("close");
    private static final byte[] KEEP_ALIVE = ascii("keep-alive");
    private static final byte[] CONTENT_LENGTH = ascii("content-length");
    private static final byte[] TRANSFER_ENCODING = ascii("transfer-encoding");

    /**
     * A reactor thread's buffers: {@code in} holds a read (64 KiB) plus a pending partial request,
     * {@code out} gathers the responses to one read so that they leave in one {@code write}.
     * A connection never changes thread, so its {@link Exchange} keeps the reference.
     */
    private static final class Scratch {
        final byte[] in = new byte[128 * 1024];
        final byte[] out = new byte[16 * 1024];
        int outLength;
    }

    private static final ThreadLocal<Scratch> SCRATCH = ThreadLocal.withInitial(Scratch::new);

    private final Duration headerTimeout;
    private final Supplier<String> metrics;
    private Scratch scratch;
    private byte[] pending;
    private int pendingLength;
    private long bodyToSkip;
    private boolean done;
    private ScheduledTask headerTimer;

    HttpExchange(Duration headerTimeout, Supplier<String> metrics) {
        this.headerTimeout = headerTimeout;
        this.metrics = metrics;
    }

    @Override
    public void onRead(Connection c, MemorySegment data) {
        if (done) {
            return;
        }
        long n = data.byteSize();
        long skip = Math.min(bodyToSkip, n);
        bodyToSkip -= skip;
        n -= skip;
        if (n == 0) {
            return;
        }
        Scratch sc = scratch;
        if (sc == null) {
            scratch = sc = SCRATCH.get();
        }
        byte[] buf = sc.in;
        int len = pendingLength;
        if (len > 0) {
            System.arraycopy(pending, 0, buf, 0, len);
        }
        MemorySegment.copy(data, ValueLayout.JAVA_BYTE, skip, buf, len, (int) n);
        len += (int) n;
        HttpResponses responses = HttpResponses.now(); // one clock read per read, not per request
        int pos = 0;
        try {
            while (pos < len && !done) {
                int used = handleOne(c, sc, responses, buf, pos, len);
                if (used == 0) {
                    break;
                }
                pos += used;
                if (bodyToSkip > 0) {
                    int s = (int) Math.min(bodyToSkip, len - pos);
                    bodyToSkip -= s;
                    pos += s;
                }
            }
        } finally {
            flush(c, sc); // the responses to this read, in one write
        }
        int left = done ? 0 : len - pos;
        if (left > 0) {
            if (pending == null) {
                pending = new byte[MAX_HEADER_BYTES];
            }
            System.arraycopy(buf, pos, pending, 0, left); // handleOne sent 431 past MAX_HEADER_BYTES
            if (headerTimer == null) {
                headerTimer = c.reactor().schedule(headerTimeout.toNanos(), TimeUnit.NANOSECONDS, () -> {
                    headerTimer = null;
                    if (!done && pendingLength > 0) {
                        done = true;
                        c.write(HttpResponses.now().timeout);
                        c.close();
                    }
                });
            }
        } else if (headerTimer != null) {
            headerTimer.cancel();
            headerTimer = null;
        }
        pendingLength = left;
        if (!c.isWritable()) {
            c.pauseReading(); // a pipelining client that does not read its responses
        }
    }

    @Override
    public void onWritable(Connection c) {
        c.resumeReading();
    }

    @Override
    public void onClose(Connection c, Throwable cause) {
        if (headerTimer != null) {
            headerTimer.cancel();
        }
    }

    /** Queues {@code response} behind the other responses to this read. */
    private static void emit(Connection c, Scratch sc, byte[] response) {
        int at = sc.outLength;
        if (at + response.length > sc.out.length) {
            flush(c, sc);
            at = 0;
            if (response.length > sc.out.length) {
                c.write(response);
                return;
            }
        }
        System.arraycopy(response, 0, sc.out, at, response.length);
        sc.outLength = at + response.length;
    }

    private static void flush(Connection c, Scratch sc) {
        if (sc.outLength > 0) {
            c.write(sc.out, 0, sc.outLength);
            sc.outLength = 0;
        }
    }

    /** The last response: after it (and those before it) are sent, the connection closes. {@return 0} */
    private int fail(Connection c, Scratch sc, byte[] response) {
        done = true;
        emit(c, sc, response);
        flush(c, sc);
        c.close();
        return 0;
    }

    /**
     * Handles the request at {@code buf[from, to)} if its header section is complete, in one pass:
     * each line is checked as it is read, and running out of bytes anywhere means "wait for more"
     * (or 431 once {@link HttpServer#MAX_HEADER_BYTES} are there without the blank line).
     *
     * @return bytes used (its header section), or 0 if more bytes are needed or it failed
     */
    private int handleOne(Connection c, Scratch sc, HttpResponses r, byte[] buf, int from, int to) {
        int end = Math.min(to, from + MAX_HEADER_BYTES);
        // ---- request line: method SP target SP version
        int p = from;
        int methodStart = p;
        while (p < end && isTchar(buf[p])) {
            p++;
        }
        int methodEnd = p;
        if (p >= end) {
            return incomplete(c, sc, r, from, to);
        }
        if (methodEnd == methodStart || buf[p] != ' ') {
            return fail(c, sc, r.badRequest);
        }
        int targetStart = ++p;
        while (p < end && buf[p] > ' ' && buf[p] != 0x7f) {
            p++;
        }
        int targetEnd = p;
        if (p >= end) {
            return incomplete(c, sc, r, from, to);
        }
        if (targetEnd == targetStart || buf[p] != ' ' || buf[targetStart] != '/') {
            return fail(c, sc, r.badRequest);
        }
        p++;
        // "HTTP/1.0" or "HTTP/1.1", checked byte by byte as far as it has arrived: a wrong byte
        // is a 400 now, not a wait for bytes that would not make it right
        int have = Math.min(8, end - p);
        for (int i = 0; i < have; i++) {
            byte b = buf[p + i];
            if (i < 7 ? b != HTTP_1[i] : b != '0' && b != '1') {
                return fail(c, sc, r.badRequest);
            }
        }
        if (have < 8) {
            return incomplete(c, sc, r, from, to);
        }
        int minor = buf[p + 7] - '0';
        p = lineEnd(buf, p + 8, end);
        if (p < 0) {
            return p == NEED_MORE ? incomplete(c, sc, r, from, to) : fail(c, sc, r.badRequest);
        }
        // ---- headers, up to the blank line
        boolean host = false;
        boolean close = minor == 0;
        long contentLength = 0;
        boolean sawLength = false;
        while (true) {
            if (p >= end) {
                return incomplete(c, sc, r, from, to);
            }
            if (buf[p] == '\r' || buf[p] == '\n') { // the blank line
                p = lineEnd(buf, p, end);
                if (p < 0) {
                    return p == NEED_MORE ? incomplete(c, sc, r, from, to) : fail(c, sc, r.badRequest);
                }
                break;
            }
            int nameStart = p;
            while (p < end && isTchar(buf[p])) {
                p++;
            }
            if (p >= end) {
                return incomplete(c, sc, r, from, to);
            }
            if (p == nameStart || buf[p] != ':') {
                return fail(c, sc, r.badRequest); // no name, space before the colon, obsolete folding...
            }
            int nameEnd = p++;
            while (p < end && (buf[p] == ' ' || buf[p] == '\t')) {
                p++;
            }
            int valueStart = p;
            while (p < end && buf[p] != '\r' && buf[p] != '\n') {
                byte b = buf[p];
                if ((b < ' ' && b != '\t') || b == 0x7f) {
                    return fail(c, sc, r.badRequest);
                }
                p++;
            }
            int valueEnd = p;
            while (valueEnd > valueStart && (buf[valueEnd - 1] == ' ' || buf[valueEnd - 1] == '\t')) {
                valueEnd--;
            }
            p = lineEnd(buf, p, end);
            if (p < 0) {
                return p == NEED_MORE ? incomplete(c, sc, r, from, to) : fail(c, sc, r.badRequest);
            }
            int nameLen = nameEnd - nameStart;
            if (nameLen == 4 && equalsIgnoreCase(buf, nameStart, HOST)) {
                host = true;
            } else if (nameLen == 10 && equalsIgnoreCase(buf, nameStart, CONNECTION)) {
                if (containsIgnoreCase(buf, valueStart, valueEnd, CLOSE)) {
                    close = true;
                } else if (containsIgnoreCase(buf, valueStart, valueEnd, KEEP_ALIVE)) {
                    close = false;
                }
            } else if (nameLen == 14 && equalsIgnoreCase(buf, nameStart, CONTENT_LENGTH)) {
                long v = digits(buf, valueStart, valueEnd);
                if (v < 0 || (sawLength && v != contentLength)) {
                    return fail(c, sc, r.badRequest);
                }
                sawLength = true;
                contentLength = v;
            } else if (nameLen == 17 && equalsIgnoreCase(buf, nameStart, TRANSFER_ENCODING)) {
                return fail(c, sc, r.badRequest); // request bodies in chunks are not supported here
            }
        }
        if (minor == 1 && !host) {
            return fail(c, sc, r.badRequest);
        }
        if (contentLength > MAX_BODY_BYTES) {
            close = true;
        }
        bodyToSkip = contentLength;
        respond(c, sc, r, buf, methodStart, methodEnd, targetStart, targetEnd, minor, close);
        return p - from; // through the blank line
    }

    /** The header section is not all there: wait for more, unless it is already too large (431). */
    private int incomplete(Connection c, Scratch sc, HttpResponses r, int from, int to) {
        if (to - from >= MAX_HEADER_BYTES) {
            return fail(c, sc, r.tooLarge);
        }
        return 0;
    }

    private void respond(Connection c, Scratch sc, HttpResponses r, byte[] buf, int methodStart, int methodEnd,
            int targetStart, int targetEnd, int minor, boolean close) {
        int pathEnd = targetStart;
        while (pathEnd < targetEnd && buf[pathEnd] != '?') {
            pathEnd++;
        }
        int pathLen = pathEnd - targetStart;
        boolean isMetrics = metrics != null && pathLen == 8 && matches(buf, targetStart, METRICS);
        boolean known = pathLen == 1 || (pathLen == 10 && matches(buf, targetStart, PLAINTEXT)) || isMetrics;
        if (!known) {
            if (close) {
                fail(c, sc, r.notFoundClose);
            } else {
                emit(c, sc, r.notFound);
            }
            return;
        }
        int methodLen = methodEnd - methodStart;
        boolean get = methodLen == 3 && matches(buf, methodStart, GET);
        boolean head = methodLen == 4 && matches(buf, methodStart, HEAD);
        if (!get && !head) {
            fail(c, sc, r.methodNotAllowed);
            return;
        }
        if (isMetrics) {
            byte[] body = metrics.get().getBytes(StandardCharsets.UTF_8); // a scrape, not the hot path
            emit(c, sc, r.metricsHead(body.length, close, minor));
            if (get) {
                emit(c, sc, body);
            }
        } else {
            emit(c, sc, r.hello(head, close, minor));
        }
        if (close) {
            done = true;
            flush(c, sc);
            c.close();
        }
    }
}
