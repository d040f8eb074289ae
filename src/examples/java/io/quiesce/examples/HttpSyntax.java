package io.quiesce.examples;

/** The byte-level HTTP/1.1 grammar {@link HttpServer} parses with (RFC 9112), over {@code byte[]}. */
final class HttpSyntax {
    /** {@code tchar} (RFC 9110 §5.6.2): what a method or a header name is made of. */
    private static final boolean[] TCHAR = new boolean[256];

    static {
        for (int c = '0'; c <= '9'; c++) {
            TCHAR[c] = true;
        }
        for (int c = 'a'; c <= 'z'; c++) {
            TCHAR[c] = true;
            TCHAR[c - 'a' + 'A'] = true;
        }
        for (char c : "!#$%&'*+-.^_`|~".toCharArray()) {
            TCHAR[c] = true;
        }
    }

    private HttpSyntax() {}

    /** {@link #lineEnd}: the bytes so far end before the line does. */
    static final int NEED_MORE = -2;
    /** {@link #lineEnd}: not a line end (a CR without its LF, or another byte). */
    static final int NOT_A_LINE_END = -1;

    /**
     * At {@code p}: a line end, CRLF or a bare LF. {@return the index after it, {@link #NEED_MORE}
     * if {@code b[p, to)} ends first, or {@link #NOT_A_LINE_END}}
     */
    static int lineEnd(byte[] b, int p, int to) {
        if (p < to && b[p] == '\r') {
            p++;
        }
        if (p >= to) {
            return NEED_MORE;
        }
        return b[p] == '\n' ? p + 1 : NOT_A_LINE_END;
    }

    static boolean isTchar(byte b) {
        return TCHAR[b & 0xff];
    }

    static boolean matches(byte[] b, int at, byte[] s) {
        for (int i = 0; i < s.length; i++) {
            if (b[at + i] != s[i]) {
                return false;
            }
        }
        return true;
    }

    /** {@code lower} is lower-case ASCII letters and '-': OR-ing 0x20 folds only letters onto it. */
    static boolean equalsIgnoreCase(byte[] b, int at, byte[] lower) {
        for (int i = 0; i < lower.length; i++) {
            byte c = b[at + i];
            if ((c | 0x20) != lower[i] && c != lower[i]) {
                return false;
            }
        }
        return true;
    }

    static boolean containsIgnoreCase(byte[] b, int from, int to, byte[] lower) {
        for (int i = from; i + lower.length <= to; i++) {
            if (equalsIgnoreCase(b, i, lower)) {
                return true;
            }
        }
        return false;
    }

    /** {@return the decimal value of {@code b[from, to)}, or -1 if it is not one (or too long)} */
    static long digits(byte[] b, int from, int to) {
        if (from == to || to - from > 18) {
            return -1;
        }
        long v = 0;
        for (int i = from; i < to; i++) {
            if (b[i] < '0' || b[i] > '9') {
                return -1;
            }
            v = v * 10 + (b[i] - '0');
        }
        return v;
    }

    static byte[] ascii(String s) {
        return s.getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    }
}
