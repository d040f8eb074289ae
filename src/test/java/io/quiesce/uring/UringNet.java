package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.__kernel_timespec;
import io.quiesce.sys.linux.io_uring_getevents_arg;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;

import static io.quiesce.sys.raw.Syscalls.AF_INET;
import static io.quiesce.sys.raw.Syscalls.SOCK_STREAM;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Test kit for the ring's socket opcodes: CQEs reaped with a bounded wait, loopback TCP
 * listeners and connections made with plain syscalls, every fd recorded for the test to close.
 */
final class UringNet {
    /** One reaped CQE. */
    record Cqe(long userData, int res, int flags) {
        boolean more() {
            return (flags & Ring.CQE_F_MORE) != 0;
        }

        boolean hasBuffer() {
            return (flags & Ring.CQE_F_BUFFER) != 0;
        }

        int bid() {
            return Ring.bufferId(flags);
        }

        @Override
        public String toString() {
            return "Cqe[ud=" + userData + " res=" + (res < 0 ? "-" + Errno.name(-res) : res)
                    + " flags=0x" + Integer.toHexString(flags) + "]";
        }
    }

    /** A bound on every wait, so a kernel that never completes fails the test instead of hanging it. */
    private static final long WAIT_NANOS = 10_000_000_000L;
    /** What a bounded enter returns when it timed out. */
    private static final int ETIME = LinuxH.ETIME();

    private final Arena arena;
    private final Syscalls sys;
    private final List<Integer> opened = new ArrayList<>();
    private final MemorySegment enterArg;
    private final MemorySegment enterTs;

    UringNet(Arena arena, Syscalls sys) {
        this.arena = arena;
        this.sys = sys;
        this.enterArg = arena.allocate(io_uring_getevents_arg.layout());
        this.enterTs = arena.allocate(__kernel_timespec.layout());
        io_uring_getevents_arg.ts(enterArg, enterTs.address());
    }

    int track(int fd) {
        assertTrue(fd >= 0, () -> "call failed: " + Errno.name(-fd));
        opened.add(fd);
        return fd;
    }

    /** Closes every fd {@link #track}ed that the test did not close itself. */
    void closeAll() {
        opened.forEach(sys::close);
        opened.clear();
    }

    /** Forgets an fd the test closed (through an SQE, say). */
    void untrack(int fd) {
        opened.remove(Integer.valueOf(fd));
    }

    /**
     * Submits what is filled, then waits until at least {@code n} CQEs are posted (a bounded
     * wait), and reaps every CQE posted.
     */
    List<Cqe> reap(Ring ring, int n) {
        long deadline = System.nanoTime() + WAIT_NANOS;
        while (true) {
            int want = Math.max(0, n - ring.cqReady());
            long left = deadline - System.nanoTime();
            if (want == 0 && ring.sqPending() == 0) {
                break;
            }
            if (left <= 0) {
                fail("waited for " + n + " CQEs, got " + ring.cqReady());
            }
            __kernel_timespec.tv_sec(enterTs, left / 1_000_000_000L);
            __kernel_timespec.tv_nsec(enterTs, left % 1_000_000_000L);
            int r = ring.enter(want, Ring.ENTER_EXT_ARG, enterArg,
                    io_uring_getevents_arg.layout().byteSize(), true);
            assertTrue(r >= 0 || r == -Errno.EINTR || r == -ETIME,
                    () -> "io_uring_enter: " + Errno.name(-r));
        }
        return take(ring);
    }

    /** Runs the ring's pending completion work without waiting, and reaps what is posted. */
    List<Cqe> poll(Ring ring) {
        int r = ring.enter(0, Ring.ENTER_GETEVENTS, MemorySegment.NULL, 0, false);
        assertTrue(r >= 0, () -> "io_uring_enter: " + Errno.name(-r));
        return take(ring);
    }

    private static List<Cqe> take(Ring ring) {
        int ready = ring.cqReady();
        var out = new ArrayList<Cqe>(ready);
        for (int i = 0; i < ready; i++) {
            out.add(new Cqe(ring.cqeUserData(i), ring.cqeRes(i), ring.cqeFlags(i)));
        }
        ring.cqAdvance(ready);
        return out;
    }

    /** A loopback TCP listener on an ephemeral port: its fd and its address. */
    record Listener(int fd, MemorySegment addr, int addrLen) {}

    Listener listen(int flags) {
        int fd = track(sys.socket(AF_INET, SOCK_STREAM | flags, 0));
        var addr = arena.allocate(SockAddr.MAX_SIZE);
        int len = SockAddr.encode(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), addr);
        assertEquals(0, sys.bind(fd, addr, len));
        assertEquals(0, sys.listen(fd, 64));
        var lenSeg = arena.allocate(ValueLayout.JAVA_INT);
        lenSeg.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
        assertEquals(0, sys.getsockname(fd, addr, lenSeg));
        return new Listener(fd, addr, lenSeg.get(ValueLayout.JAVA_INT, 0));
    }

    /** A blocking connect to {@code l}: the connection is in its accept queue on return. */
    int connect(Listener l) {
        int fd = track(sys.socket(AF_INET, SOCK_STREAM, 0));
        assertEquals(0, sys.connect(fd, l.addr(), l.addrLen()));
        return fd;
    }

    /** {@return a connected loopback pair: {client, server}} */
    int[] tcpPair() {
        var l = listen(0);
        int client = connect(l);
        int server = track(sys.accept(l.fd(), MemorySegment.NULL, MemorySegment.NULL, 0));
        sys.close(l.fd());
        untrack(l.fd());
        return new int[] {client, server};
    }

    /** Writes {@code bytes} with a blocking send, all of them. */
    void sendAll(int fd, byte[] bytes) {
        var seg = arena.allocate(Math.max(1, bytes.length));
        MemorySegment.copy(bytes, 0, seg, ValueLayout.JAVA_BYTE, 0, bytes.length);
        long done = 0;
        while (done < bytes.length) {
            long n = sys.send(fd, seg.asSlice(done), bytes.length - done, Syscalls.MSG_NOSIGNAL);
            assertTrue(n > 0, () -> "send: " + Errno.name((int) -n));
            done += n;
        }
    }
}
