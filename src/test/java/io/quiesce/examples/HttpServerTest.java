package io.quiesce.examples;

import io.quiesce.net.Server;
import io.quiesce.net.WarmJdkSockets;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.*;

@ExtendWith({WarmJdkSockets.class, NoFdLeaks.class})
class HttpServerTest {
    private ReactorGroup group;
    private Server server;

    record Response(int status, String headers, String body) {}

    @BeforeEach
    void start() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withThreadNamePrefix("http-test-"));
        server = HttpServer.start(group, new InetSocketAddress("127.0.0.1", 0),
                new HttpServer.Timeouts(Duration.ofMillis(500), Duration.ofSeconds(20), Duration.ofSeconds(20)));
    }

    @AfterEach
    void stop() throws Exception {
        server.closeAsync().get(30, java.util.concurrent.TimeUnit.SECONDS);
        group.close(Duration.ofSeconds(30));
    }

    private Socket connect() throws IOException {
        Socket s = new Socket("127.0.0.1", server.port());
        s.setSoTimeout(30_000);
        return s;
    }

    /** Reads one response: status line, headers, and a Content-Length body. */
    static Response read(InputStream in) throws IOException {
        ByteArrayOutputStream head = new ByteArrayOutputStream();
        int state = 0;
        while (state < 4) {
            int b = in.read();
            if (b < 0) {
                return null;
            }
            head.write(b);
            state = (b == '\r' && (state == 0 || state == 2)) || (b == '\n' && (state == 1 || state == 3)) ? state + 1 : (b == '\r' ? 1 : 0);
        }
        String h = head.toString(StandardCharsets.US_ASCII);
        int status = Integer.parseInt(h.substring(9, 12));
        int length = 0;
        for (String line : h.split("\r\n")) {
            if (line.toLowerCase(Locale.ROOT).startsWith("content-length:")) {
                length = Integer.parseInt(line.substring(15).trim());
            }
        }
        return new Response(status, h, new String(in.readNBytes(length), StandardCharsets.US_ASCII));
    }

    private Response exchange(String request) throws IOException {
        try (Socket s = connect()) {
            s.getOutputStream().write(request.getBytes(StandardCharsets.US_ASCII));
            return read(s.getInputStream());
        }
    }

    @Test
    void plaintextAndRootSayHello() throws Exception {
        for (String path : List.of("/plaintext", "/", "/plaintext?x=1")) {
            Response r = exchange("GET " + path + " HTTP/1.1\r\nHost: x\r\n\r\n");
            assertEquals(200, r.status());
            assertEquals("Hello, World!", r.body());
            assertTrue(r.headers().contains("Content-Length: 13\r\n"), r.headers());
            assertTrue(r.headers().contains("Content-Type: text/plain\r\n"), r.headers());
            assertTrue(r.headers().contains("Date: "), r.headers());
        }
    }

    @Test
    void keepAliveServesManyRequestsOnOneConnection() throws Exception {
        try (Socket s = connect()) {
            for (int i = 0; i < 200; i++) {
                s.getOutputStream().write("GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".getBytes());
                Response r = read(s.getInputStream());
                assertEquals(200, r.status());
                assertEquals("Hello, World!", r.body());
            }
        }
    }

    @Test
    void pipelinedRequestsAreAnsweredInOrder() throws Exception {
        String req = "GET / HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /nothing-here HTTP/1.1\r\nHost: x\r\n\r\n"
                + "HEAD /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
                + "GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        try (Socket s = connect()) {
            // in two writes that split a request, to exercise a partial header section
            byte[] bytes = req.getBytes(StandardCharsets.US_ASCII);
            s.getOutputStream().write(bytes, 0, 40);
            s.getOutputStream().flush();
            Thread.sleep(20);
            s.getOutputStream().write(bytes, 40, bytes.length - 40);
            InputStream in = s.getInputStream();
            List<Integer> statuses = new ArrayList<>();
            Response r;
            r = read(in);
            statuses.add(r.status());
            assertEquals("Hello, World!", r.body());
            statuses.add(read(in).status());
            r = read(in); // HEAD: Content-Length 13 but no body; read the head only
            statuses.add(r.status());
            assertTrue(r.headers().contains("Content-Length: 13"));
            // (the helper read 13 body bytes for HEAD: they are the next response's first bytes)
            assertEquals("HTTP/1.1 200 ", r.body());
            statuses.add(200);
            assertEquals(List.of(200, 404, 200, 200), statuses);
            String rest = new String(in.readAllBytes(), StandardCharsets.US_ASCII);
            assertEquals(2, rest.split("Hello, World!", -1).length - 1, rest);
            assertTrue(rest.contains("Connection: close"), rest);
        }
    }

    @Test
    void malformedRequestsGet400AndOthersAreStillServed() throws Exception {
        for (String bad : List.of(
                "GARBAGE\r\n\r\n",
                "GET /plaintext HTTP/9.9\r\nHost: x\r\n\r\n",
                "GET plaintext HTTP/1.1\r\nHost: x\r\n\r\n",
                "G(T / HTTP/1.1\r\nHost: x\r\n\r\n",
                "GET / HTTP/1.1\r\nHost x\r\n\r\n",
                "GET / HTTP/1.1\r\nHost : x\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 12x\r\n\r\n",
                "GET / HTTP/1.1\r\n\r\n")) {
            try (Socket s = connect()) {
                s.getOutputStream().write(bad.getBytes(StandardCharsets.US_ASCII));
                Response r = read(s.getInputStream());
                assertNotNull(r, bad);
                assertEquals(400, r.status(), bad);
                assertEquals(-1, s.getInputStream().read(), "closed after 400: " + bad);
            }
            assertEquals(200, exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status());
        }
    }

    @Test
    void oversizedHeadersGet431() throws Exception {
        String big = "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(HttpServer.MAX_HEADER_BYTES) + "\r\n\r\n";
        try (Socket s = connect()) {
            s.getOutputStream().write(big.getBytes(StandardCharsets.US_ASCII));
            Response r = read(s.getInputStream());
            assertEquals(431, r.status());
        } catch (java.net.SocketException resetWhileWriting) {
            fail("the server should answer 431 before closing: " + resetWhileWriting);
        }
        assertEquals(200, exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status());
    }

    @Test
    void unknownPathsGet404AndOtherMethods405() throws Exception {
        assertEquals(404, exchange("GET /nope HTTP/1.1\r\nHost: x\r\n\r\n").status());
        Response r = exchange("POST /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        assertEquals(405, r.status());
        assertTrue(r.headers().contains("Allow: GET, HEAD"), r.headers());
    }

    @Test
    void aSlowLorisIsTimedOut() throws Exception {
        try (Socket s = connect()) {
            var out = s.getOutputStream();
            out.write("GET /plaintext HTTP/1.1\r\nHost: x\r\n".getBytes());
            // One header byte every 50 ms: the connection is never idle, but the request never ends.
            Thread trickle = Thread.ofPlatform().daemon().start(() -> {
                try {
                    for (int i = 0; i < 2_000; i++) {
                        out.write('X');
                        Thread.sleep(50);
                    }
                } catch (Exception closed) {
                    // the server closed it: expected
                }
            });
            Response r = read(s.getInputStream());
            assertNotNull(r);
            assertEquals(408, r.status());
            assertEquals(-1, s.getInputStream().read());
            trickle.interrupt();
            trickle.join(30_000);
        }
        assertEquals(200, exchange("GET / HTTP/1.1\r\nHost: x\r\n\r\n").status());
    }

    /** The parser reads a request in one pass: every split point must mean "wait", never a wrong answer. */
    @Test
    void aRequestSplitAnywhereIsAnsweredOnce() throws Exception {
        String req = "GET /plaintext?a=b HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\nContent-Length: 2\r\n\r\nok"
                + "HEAD / HTTP/1.0\nConnection: keep-alive\n\n";
        byte[] bytes = req.getBytes(StandardCharsets.US_ASCII);
        for (int k = 1; k < bytes.length; k++) {
            try (Socket s = connect()) {
                s.setTcpNoDelay(true);
                s.getOutputStream().write(bytes, 0, k);
                s.getOutputStream().flush();
                Thread.sleep(2); // most splits arrive as two reads
                s.getOutputStream().write(bytes, k, bytes.length - k);
                Response r = read(s.getInputStream());
                assertNotNull(r, "split at " + k);
                assertEquals(200, r.status(), "split at " + k);
                assertEquals("Hello, World!", r.body(), "split at " + k);
            }
        }
    }

    /** A byte that can never start a valid continuation is refused at once, not waited on. */
    @Test
    void aBadRequestIsRefusedBeforeItsHeaderSectionEnds() throws Exception {
        for (String bad : List.of("GET / HTTP\r\n\r\n", "GET / HTTP/2", "GET / HTTP/1.1\r\nHost: x\r\n\rX",
                "GET / HTTP/1.1\rX", "GET / HTTP/1.1\r\nHost: x\r\nBad Name: y")) {
            try (Socket s = connect()) {
                s.getOutputStream().write(bad.getBytes(StandardCharsets.US_ASCII));
                Response r = read(s.getInputStream());
                assertNotNull(r, bad);
                assertEquals(400, r.status(), bad); // a 408 here would mean it waited for the header timeout
                assertEquals(-1, s.getInputStream().read(), "closed after 400: " + bad);
            }
        }
    }
}
