package io.quiesce.sys.raw;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.epoll_event;
import io.quiesce.testing.FdSnapshot;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static io.quiesce.sys.raw.Syscalls.*;
import static io.quiesce.sys.raw.TestSyscalls.*;
import static org.junit.jupiter.api.Assertions.*;

@ExtendWith(NoFdLeaks.class)
class SyscallsTest {
    private final Arena arena = Arena.ofConfined();
    private final Syscalls sys = new Syscalls(arena);
    private final TestSyscalls tsys = new TestSyscalls(arena);
    private final List<Integer> opened = new ArrayList<>();

    private int track(int fd) {
        assertTrue(fd >= 0, () -> "call failed: " + Errno.name(-fd));
        opened.add(fd);
        return fd;
    }

    @AfterEach
    void closeAll() {
        for (int fd : opened) {
            assertEquals(0, sys.close(fd), "close(" + fd + ")");
        }
        arena.close();
    }

    @Test
    void epollEventIsTwelvePackedBytesWithDataAtOffsetFour() {
        assertEquals(12, EPOLL_EVENT_SIZE);
        assertEquals(4, EPOLL_EVENT_DATA_OFFSET);
        assertEquals(12, epoll_event.layout().byteSize());
    }

    @Test
    void kernelFillsEventsAtTheOffsetsTheLayoutNames() {
        int ep = track(sys.epollCreate());
        int a = track(sys.eventfd(0, EFD_NONBLOCK));
        int b = track(sys.eventfd(0, EFD_NONBLOCK));
        long tokenA = 0x1122_3344_5566_7788L;
        long tokenB = 0x8877_6655_4433_2211L; // negative as a Java long: all 64 bits survive
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, a, EPOLLIN, tokenA));
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, b, EPOLLIN | EPOLLOUT, tokenB));
        assertEquals(8, sys.eventfdWrite(a, 5));

        MemorySegment events = arena.allocate(EPOLL_EVENT_SIZE * 4);
        events.fill((byte) 0x5a);
        int n = sys.epollWait(ep, events, 4, 1000);
        assertEquals(2, n);
        var seen = new java.util.HashMap<Long, Integer>();
        for (int i = 0; i < n; i++) {
            MemorySegment e = events.asSlice(i * EPOLL_EVENT_SIZE, EPOLL_EVENT_SIZE);
            seen.put(e.get(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET), epoll_event.events(e));
        }
        assertEquals(EPOLLIN, seen.get(tokenA), "a asked for IN only and is readable (count 5)");
        assertEquals(EPOLLOUT, seen.get(tokenB), "b is writable only");
        // The bytes after the last event were not touched: the kernel wrote exactly 2 x 12.
        assertEquals((byte) 0x5a, events.get(ValueLayout.JAVA_BYTE, 2 * EPOLL_EVENT_SIZE));
        assertEquals(5, tsys.eventfdRead(a));
    }

    @Test
    void errnoIsCapturedForEachMappedFailure() {
        int ep = track(sys.epollCreate());
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        int closed = sys.eventfd(0, 0);
        assertEquals(0, sys.close(closed));

        assertEquals(-Errno.EBADF, sys.close(closed), "close of a closed fd");
        assertEquals(-Errno.EBADF, sys.epollCtl(ep, EPOLL_CTL_ADD, closed, EPOLLIN, 0));
        assertEquals(-Errno.EAGAIN, tsys.eventfdRead(efd), "empty non-blocking eventfd");
        assertEquals(-Errno.ENOENT, sys.epollCtl(ep, EPOLL_CTL_MOD, efd, EPOLLIN, 0), "MOD before ADD");
        assertEquals(-Errno.ENOENT, sys.epollCtl(ep, EPOLL_CTL_DEL, efd, 0, 0), "DEL before ADD");
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, efd, EPOLLIN, 0));
        assertEquals(-Errno.EEXIST, sys.epollCtl(ep, EPOLL_CTL_ADD, efd, EPOLLIN, 0), "second ADD");
        assertEquals(-Errno.EINVAL, sys.epollCtl(ep, EPOLL_CTL_ADD, ep, EPOLLIN, 0), "epoll in itself");
    }

    @Test
    void errnoStaysWithItsThreadUnderConcurrentFailures() throws Exception {
        int efd = track(sys.eventfd(0, EFD_NONBLOCK));
        int threads = 4;
        var start = new CountDownLatch(1);
        ExecutorService pool = Executors.newFixedThreadPool(threads);
        try {
            List<Future<?>> done = new ArrayList<>();
            for (int t = 0; t < threads; t++) {
                boolean badf = t % 2 == 0;
                done.add(pool.submit(() -> {
                    Syscalls mine = Syscalls.current();
                    MemorySegment counter = Arena.ofAuto().allocate(8); // an eventfd read is 8 bytes
                    start.await();
                    for (int i = 0; i < 20_000; i++) {
                        if (badf) {
                            assertEquals(-Errno.EBADF, mine.close(-1));
                        } else {
                            assertEquals(-Errno.EAGAIN, mine.read(efd, counter, 8));
                        }
                    }
                    return null;
                }));
            }
            start.countDown();
            for (Future<?> f : done) {
                f.get();
            }
        } finally {
            pool.shutdownNow();
        }
    }

    @Test
    void everyFdTheLayerCreatesIsCloseOnExec() {
        int[] pipe = new int[2];
        int[] pair = new int[2];
        assertEquals(0, tsys.pipe(pipe, O_NONBLOCK));
        track(pipe[0]);
        track(pipe[1]);
        assertEquals(0, tsys.socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
        track(pair[0]);
        track(pair[1]);
        int listener = track(sys.socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0));
        MemorySegment addr = arena.allocate(SockAddr.MAX_SIZE);
        int len = SockAddr.encode(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), addr);
        assertEquals(0, sys.bind(listener, addr, len));
        assertEquals(0, sys.listen(listener, 16));
        int client = track(sys.socket(AF_INET, SOCK_STREAM, 0));
        MemorySegment lenSeg = arena.allocate(ValueLayout.JAVA_INT);
        lenSeg.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
        assertEquals(0, sys.getsockname(listener, addr, lenSeg));
        assertEquals(0, sys.connect(client, addr, lenSeg.get(ValueLayout.JAVA_INT, 0)));
        int accepted = track(sys.accept(listener, MemorySegment.NULL, MemorySegment.NULL, SOCK_NONBLOCK));

        int[] fds = {
            track(sys.epollCreate()), track(sys.eventfd(0, EFD_NONBLOCK)),
            track(tsys.timerfdCreate(CLOCK_MONOTONIC, TFD_NONBLOCK)), track(tsys.dup(pipe[0])),
            pipe[0], pipe[1], pair[0], pair[1], listener, client, accepted,
        };
        for (int fd : fds) {
            assertEquals(FD_CLOEXEC, tsys.fcntl(fd, F_GETFD, 0) & FD_CLOEXEC, "FD_CLOEXEC on fd " + fd);
            // Independently of fcntl: the kernel reports O_CLOEXEC in /proc/self/fdinfo.
            assertEquals(O_CLOEXEC, FdSnapshot.fdinfoFlags(fd) & O_CLOEXEC, "fdinfo of fd " + fd);
        }
    }

    @Test
    void socketAddressesSurviveTheKernel() {
        for (String host : new String[] {"127.0.0.1", "::1"}) {
            int fd = track(sys.socket(host.contains(":") ? AF_INET6 : AF_INET, SOCK_STREAM, 0));
            MemorySegment addr = arena.allocate(SockAddr.MAX_SIZE);
            int len = SockAddr.encode(new InetSocketAddress(host, 0), addr);
            assertEquals(0, Math.min(0, sys.bind(fd, addr, len)), () -> "bind " + host);
            MemorySegment out = arena.allocate(SockAddr.MAX_SIZE);
            MemorySegment outLen = arena.allocate(ValueLayout.JAVA_INT);
            outLen.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
            assertEquals(0, sys.getsockname(fd, out, outLen));
            InetSocketAddress bound = SockAddr.decode(out);
            assertEquals(inetAddressOf(host), bound.getAddress());
            assertTrue(bound.getPort() > 0, "the kernel chose a port");
        }
    }

    private static InetAddress inetAddressOf(String host) {
        try {
            return InetAddress.getByName(host);
        } catch (java.net.UnknownHostException e) {
            throw new AssertionError(e);
        }
    }

    @Test
    void timeoutsInNanosecondsAndTimerfdsWork() {
        int ep = track(sys.epollCreate());
        int tfd = track(tsys.timerfdCreate(CLOCK_MONOTONIC, TFD_NONBLOCK));
        MemorySegment events = arena.allocate(EPOLL_EVENT_SIZE * 2);
        assertEquals(0, sys.epollWaitNanos(ep, events, 2, 0), "nothing registered, no wait");
        assertEquals(0, sys.epollCtl(ep, EPOLL_CTL_ADD, tfd, EPOLLIN, 42));
        assertEquals(0, tsys.timerfdSettime(tfd, 1_000_000, 0));
        assertEquals(1, sys.epollWaitNanos(ep, events, 2, 5_000_000_000L));
        assertEquals(42, events.get(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET));
        assertEquals(1, tsys.eventfdRead(tfd), "a timerfd read returns its expiry count");
    }

    @Test
    void errorsNameTheirCallFdAndErrno() throws SyscallException {
        var e = assertThrows(SyscallException.class, () -> Errno.check(sys.close(-1), "close", -1));
        assertEquals("EBADF", e.errnoName());
        assertEquals("close", e.call());
        var e2 = assertThrows(SyscallException.class,
                () -> Errno.check(-Errno.EEXIST, "epoll_ctl(ADD)", 7));
        assertEquals("epoll_ctl(ADD)(fd=7): EEXIST (File exists)", e2.getMessage());
        assertEquals("EAGAIN", Errno.name(Errno.EAGAIN));
        assertEquals("EINPROGRESS", Errno.name(-Errno.EINPROGRESS));
        assertEquals(3, Errno.check(3, "read", 1));
    }

    @Test
    void gatheringSendDeliversInOrderAndAGonePeerGivesEpipe() {
        int[] pair = new int[2];
        assertEquals(0, tsys.socketpair(AF_UNIX, SOCK_STREAM, 0, pair));
        track(pair[0]);
        int peer = pair[1];
        var iov = arena.allocate(io.quiesce.sys.linux.iovec.layout(), 2);
        var a = arena.allocateFrom("hello, ");
        var b = arena.allocateFrom("world");
        io.quiesce.sys.linux.iovec.iov_base(iov, a);
        io.quiesce.sys.linux.iovec.iov_len(iov, 7);
        var second = iov.asSlice(io.quiesce.sys.linux.iovec.layout().byteSize());
        io.quiesce.sys.linux.iovec.iov_base(second, b);
        io.quiesce.sys.linux.iovec.iov_len(second, 5);
        assertEquals(12, sys.sendmsg(pair[0], iov, 2, MSG_NOSIGNAL));
        var in = arena.allocate(64);
        assertEquals(12, tsys.recv(peer, in, 64, 0));
        assertEquals("hello, world", new String(in.asSlice(0, 12).toArray(ValueLayout.JAVA_BYTE)));
        assertEquals(0, sys.close(peer));
        assertEquals(-Errno.EPIPE, sys.sendmsg(pair[0], iov, 2, MSG_NOSIGNAL));
    }

    @Test
    void fileLimitsReadBackWhatWasSet() {
        long[] lim = new long[2];
        assertEquals(0, tsys.fileLimit(lim));
        assertTrue(lim[0] > 0 && lim[0] <= lim[1]);
        assertEquals(0, tsys.setFileLimit(lim[0], lim[1]));
        assertTrue(TestSyscalls.pid() == ProcessHandle.current().pid());
    }
}
