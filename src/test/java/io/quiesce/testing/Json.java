package io.quiesce.testing;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small strict JSON reader for tests (the dashboard, Prometheus' API answers), so the suite
 * needs no JSON library. Objects become {@link Map}s (in document order), arrays {@link List}s,
 * numbers {@link Double}s, and {@code true}/{@code false}/{@code null} themselves.
 */
public final class Json {
    private final String s;
    private int p;

    private Json(String s) {
        this.s = s;
    }

    /** {@return the value {@code text} holds} @param text a JSON document */
    public static Object parse(String text) {
        Json j = new Json(text);
        Object v = j.value();
        j.space();
        if (j.p != text.length()) {
            throw j.error("trailing characters");
        }
        return v;
    }

    /** {@return {@code o} as an object} @param o a parsed value */
    @SuppressWarnings("unchecked")
    public static Map<String, Object> object(Object o) {
        if (!(o instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException("not a JSON object: " + o);
        }
        return (Map<String, Object>) m;
    }

    /** {@return {@code o} as an array} @param o a parsed value */
    @SuppressWarnings("unchecked")
    public static List<Object> array(Object o) {
        if (!(o instanceof List<?> l)) {
            throw new IllegalArgumentException("not a JSON array: " + o);
        }
        return (List<Object>) l;
    }

    private Object value() {
        space();
        if (p >= s.length()) {
            throw error("unexpected end");
        }
        char c = s.charAt(p);
        return switch (c) {
            case '{' -> obj();
            case '[' -> arr();
            case '"' -> str();
            case 't' -> word("true", Boolean.TRUE);
            case 'f' -> word("false", Boolean.FALSE);
            case 'n' -> word("null", null);
            default -> num();
        };
    }

    private Map<String, Object> obj() {
        var m = new LinkedHashMap<String, Object>();
        p++;
        space();
        if (peek() == '}') {
            p++;
            return m;
        }
        while (true) {
            space();
            if (peek() != '"') {
                throw error("expected a key");
            }
            String k = str();
            space();
            expect(':');
            m.put(k, value());
            space();
            if (peek() == ',') {
                p++;
            } else {
                expect('}');
                return m;
            }
        }
    }

    private List<Object> arr() {
        var l = new ArrayList<Object>();
        p++;
        space();
        if (peek() == ']') {
            p++;
            return l;
        }
        while (true) {
            l.add(value());
            space();
            if (peek() == ',') {
                p++;
            } else {
                expect(']');
                return l;
            }
        }
    }

    private String str() {
        p++;
        var b = new StringBuilder();
        while (true) {
            if (p >= s.length()) {
                throw error("unterminated string");
            }
            char c = s.charAt(p++);
            if (c == '"') {
                return b.toString();
            }
            if (c != '\\') {
                b.append(c);
                continue;
            }
            char e = s.charAt(p++);
            switch (e) {
                case '"', '\\', '/' -> b.append(e);
                case 'b' -> b.append('\b');
                case 'f' -> b.append('\f');
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'u' -> {
                    b.append((char) Integer.parseInt(s.substring(p, p + 4), 16));
                    p += 4;
                }
                default -> throw error("bad escape \\" + e);
            }
        }
    }

    private Object word(String w, Object v) {
        if (!s.startsWith(w, p)) {
            throw error("expected " + w);
        }
        p += w.length();
        return v;
    }

    private Double num() {
        int start = p;
        while (p < s.length() && "+-0123456789.eE".indexOf(s.charAt(p)) >= 0) {
            p++;
        }
        if (start == p) {
            throw error("unexpected character '" + s.charAt(p) + "'");
        }
        return Double.valueOf(s.substring(start, p));
    }

    private void space() {
        while (p < s.length() && Character.isWhitespace(s.charAt(p))) {
            p++;
        }
    }

    private char peek() {
        return p < s.length() ? s.charAt(p) : '\0';
    }

    private void expect(char c) {
        if (peek() != c) {
            throw error("expected '" + c + "'");
        }
        p++;
    }

    private IllegalArgumentException error(String what) {
        return new IllegalArgumentException(what + " at offset " + p);
    }
}
