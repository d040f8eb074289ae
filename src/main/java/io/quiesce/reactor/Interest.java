package io.quiesce.reactor;

import io.quiesce.sys.raw.Syscalls;

/**
 * Interest and readiness bits. They are the kernel's epoll bits, so a ready set is handed to
 * an {@link EventHandler} exactly as {@code epoll_wait} returned it, with no translation.
 *
 * <p>An interest is {@link #READ}, {@link #WRITE} and/or {@link #PEER_CLOSED}, optionally with
 * {@link #LEVEL} (the default is edge-triggered) and {@link #ONESHOT}. A ready set may also
 * carry {@link #HANGUP} and {@link #ERROR}, which the kernel always reports, asked for or not
 * ({@code epoll-wait-flags-oneshot.txt}).
 */
public final class Interest {
    /** Readable (or EOF): {@code EPOLLIN}. */
    public static final int READ = Syscalls.EPOLLIN;
    /** Writable: {@code EPOLLOUT}. */
    public static final int WRITE = Syscalls.EPOLLOUT;
    /** The peer shut down its writing side (TCP half-close): {@code EPOLLRDHUP}. */
    public static final int PEER_CLOSED = Syscalls.EPOLLRDHUP;
    /** Hang-up: {@code EPOLLHUP}. Ready-set only; always reported. */
    public static final int HANGUP = Syscalls.EPOLLHUP;
    /** Error pending on the fd ({@code SO_ERROR} says which): {@code EPOLLERR}. Ready-set only. */
    public static final int ERROR = Syscalls.EPOLLERR;
    /** Report once, then stay disabled until {@link Handle#rearm()}: {@code EPOLLONESHOT}. */
    public static final int ONESHOT = Syscalls.EPOLLONESHOT;
    /**
     * Level-triggered: report for as long as the condition holds. Without it, interest is
     * edge-triggered ({@code EPOLLET}): reported when the condition newly arises, so a handler
     * must drain until {@code EAGAIN}.
     */
    public static final int LEVEL = 1 << 27; // a bit epoll does not use; never passed to the kernel

    /** What a socket usually wants: read, write and peer-closed, edge-triggered, once at ADD. */
    public static final int SOCKET_DEFAULT = READ | WRITE | PEER_CLOSED;

    static final int USER_BITS = READ | WRITE | PEER_CLOSED | ONESHOT | LEVEL | Syscalls.EPOLLPRI;

    private Interest() {}

    /** {@return the mask {@code epoll_ctl} is given for {@code interest}} */
    static int toEpoll(int interest) {
        int events = interest & ~LEVEL;
        return (interest & LEVEL) != 0 ? events : events | Syscalls.EPOLLET;
    }

    /** Checks that {@code interest} holds only known bits. */
    static int check(int interest) {
        if ((interest & ~USER_BITS) != 0) {
            throw new IllegalArgumentException("unknown interest bits: 0x" + Integer.toHexString(interest & ~USER_BITS));
        }
        return interest;
    }

    /**
     * {@return a readable form of a ready or interest set, e.g. {@code "READ|PEER_CLOSED"}}
     *
     * @param bits {@link Interest} bits
     */
    public static String toString(int bits) {
        StringBuilder sb = new StringBuilder();
        append(sb, bits, READ, "READ");
        append(sb, bits, WRITE, "WRITE");
        append(sb, bits, PEER_CLOSED, "PEER_CLOSED");
        append(sb, bits, HANGUP, "HANGUP");
        append(sb, bits, ERROR, "ERROR");
        append(sb, bits, ONESHOT, "ONESHOT");
        append(sb, bits, LEVEL, "LEVEL");
        return sb.isEmpty() ? "NONE" : sb.toString();
    }

    private static void append(StringBuilder sb, int bits, int bit, String name) {
        if ((bits & bit) != 0) {
            sb.append(sb.isEmpty() ? "" : "|").append(name);
        }
    }
}
