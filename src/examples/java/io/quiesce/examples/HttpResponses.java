package io.quiesce.examples;

import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.ZoneOffset;

/**
 * Every fixed response of {@link HttpServer}, encoded once per second with that second's
 * {@code Date} line (RFC 9110 §6.6.1: an origin server with a clock sends one on every response,
 * in IMF-fixdate form). A request is answered by copying one of these arrays: no formatting, no
 * string building, no allocation. Immutable; any thread may read {@link #now()}.
 */
final class HttpResponses {
    private static final String[] DAYS = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
    private static final String[] MONTHS = {"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep",
            "Oct", "Nov", "Dec"};
    private static final String HELLO = "Hello, World!";
    private static final String HELLO_HEAD = "HTTP/1.1 200 OK\r\nServer: quiesce\r\nContent-Type: text/plain\r\n"
            + "Content-Length: " + HELLO.length() + "\r\n";
    /** Built by whichever thread first sees a new second; a race builds the same bytes twice. */
    private static volatile HttpResponses current = new HttpResponses(System.currentTimeMillis() / 1000);

    final long second;
    /** {@code Date: <IMF-fixdate>\r\n}. */
    final byte[] dateLine;
    /** 200 Hello, World! for GET: HTTP/1.1 keep-alive, HTTP/1.0 keep-alive, either closing. */
    final byte[] get11;
    final byte[] get10KeepAlive;
    final byte[] getClose;
    /** The same heads for HEAD (no body). */
    final byte[] head11;
    final byte[] head10KeepAlive;
    final byte[] headClose;
    final byte[] notFound;
    final byte[] notFoundClose;
    final byte[] methodNotAllowed;
    final byte[] badRequest;
    final byte[] tooLarge;
    final byte[] timeout;

    private HttpResponses(long second) {
        this.second = second;
        String date = "Date: " + imfFixdate(second) + "\r\n";
        dateLine = ascii(date);
        get11 = ascii(HELLO_HEAD + date + "\r\n" + HELLO);
        get10KeepAlive = ascii(HELLO_HEAD + date + "Connection: keep-alive\r\n\r\n" + HELLO);
        getClose = ascii(HELLO_HEAD + date + "Connection: close\r\n\r\n" + HELLO);
        head11 = ascii(HELLO_HEAD + date + "\r\n");
        head10KeepAlive = ascii(HELLO_HEAD + date + "Connection: keep-alive\r\n\r\n");
        headClose = ascii(HELLO_HEAD + date + "Connection: close\r\n\r\n");
        notFound = error(404, "Not Found", "", date, false);
        notFoundClose = error(404, "Not Found", "", date, true);
        methodNotAllowed = error(405, "Method Not Allowed", "Allow: GET, HEAD\r\n", date, true);
        badRequest = error(400, "Bad Request", "", date, true);
        tooLarge = error(431, "Request Header Fields Too Large", "", date, true);
        timeout = error(408, "Request Timeout", "", date, true);
    }

    /** {@return the responses for the current second} One clock read; a new set once a second. */
    static HttpResponses now() {
        long s = System.currentTimeMillis() / 1000;
        HttpResponses r = current;
        if (r.second != s) {
            current = r = new HttpResponses(s);
        }
        return r;
    }

    /** {@return the 200 response for GET (or HEAD) as the request's version and Connection header ask} */
    byte[] hello(boolean head, boolean close, int minor) {
        if (close) {
            return head ? headClose : getClose;
        }
        if (minor == 0) {
            return head ? head10KeepAlive : get10KeepAlive;
        }
        return head ? head11 : get11;
    }

    /**
     * {@return {@code epochSecond} as an IMF-fixdate, e.g. {@code Tue, 01 Dec 2026 21:05:09 GMT}}
     * (RFC 9110 §5.6.7: fixed-width fields, a two-digit day, always GMT). Not
     * {@code DateTimeFormatter.RFC_1123_DATE_TIME}, which writes a one-digit day.
     */
    static String imfFixdate(long epochSecond) {
        LocalDateTime t = LocalDateTime.ofEpochSecond(epochSecond, 0, ZoneOffset.UTC);
        var b = new StringBuilder(29);
        b.append(DAYS[t.getDayOfWeek().ordinal()]).append(", ");
        two(b, t.getDayOfMonth()).append(' ').append(MONTHS[t.getMonthValue() - 1]).append(' ');
        int year = t.getYear();
        b.append((char) ('0' + year / 1000 % 10)).append((char) ('0' + year / 100 % 10));
        two(b, year % 100).append(' ');
        two(b, t.getHour()).append(':');
        two(b, t.getMinute()).append(':');
        return two(b, t.getSecond()).append(" GMT").toString();
    }

    private static StringBuilder two(StringBuilder b, int v) {
        return b.append((char) ('0' + v / 10)).append((char) ('0' + v % 10));
    }

    /** {@return the head of a 200 {@code /metrics} response whose body is {@code length} bytes} */
    byte[] metricsHead(int length, boolean close, int minor) {
        return ascii("HTTP/1.1 200 OK\r\nServer: quiesce\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
                + "Content-Length: " + length + "\r\n" + new String(dateLine, StandardCharsets.US_ASCII)
                + (close ? "Connection: close\r\n" : minor == 0 ? "Connection: keep-alive\r\n" : "") + "\r\n");
    }

    private static byte[] error(int status, String reason, String extra, String date, boolean close) {
        String body = status + " " + reason + "\n";
        return ascii("HTTP/1.1 " + status + " " + reason + "\r\nServer: quiesce\r\n" + extra
                + "Content-Type: text/plain\r\nContent-Length: " + body.length() + "\r\n" + date
                + (close ? "Connection: close\r\n" : "") + "\r\n" + body);
    }

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }
}
