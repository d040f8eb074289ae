package io.quiesce.sys;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.net.BindException;
import java.net.ConnectException;
import java.net.NoRouteToHostException;
import java.net.SocketException;
import java.net.SocketTimeoutException;
import java.time.Duration;

import static org.junit.jupiter.api.Assertions.*;

/**
 * The one errno-to-exception mapping: each socket failure is the {@code java.net} type a Java
 * developer catches and still names its call, fd and errno. (The same types from real kernels'
 * errnos: {@code ConnectionTest}, {@code PortBindingTest}.)
 */
class ErrnoMappingTest {

    private static <T extends IOException> SyscallFailure expect(Class<T> type, IOException e, String call, int fd, int errno) {
        assertInstanceOf(type, e, e.toString());
        var f = assertInstanceOf(SyscallFailure.class, e);
        assertEquals(call, f.call());
        assertEquals(fd, f.fd());
        assertEquals(errno, f.errno());
        assertEquals(Errno.name(errno), f.errnoName());
        return f;
    }

    @Test
    void refusedConnectIsAConnectException() {
        var e = Errno.socketException("connect", 5, Errno.ECONNREFUSED);
        expect(ConnectException.class, e, "connect", 5, Errno.ECONNREFUSED);
        assertEquals("connect(fd=5): ECONNREFUSED (Connection refused)", e.getMessage());
        expect(ConnectException.class, Errno.socketException("connect", 5, Errno.ETIMEDOUT),
                "connect", 5, Errno.ETIMEDOUT);
    }

    @Test
    void anAddressInUseOnBindOrListenIsABindException() {
        expect(BindException.class, Errno.socketException("bind(127.0.0.1:80)", 3, Errno.EADDRINUSE),
                "bind(127.0.0.1:80)", 3, Errno.EADDRINUSE);
        expect(BindException.class, Errno.socketException("listen", 3, Errno.EADDRINUSE), "listen", 3, Errno.EADDRINUSE);
        expect(BindException.class, Errno.socketException("bind", 3, Errno.EACCES), "bind", 3, Errno.EACCES);
        expect(BindException.class, Errno.socketException("bind", 3, Errno.EADDRNOTAVAIL), "bind", 3, Errno.EADDRNOTAVAIL);
        // connect out of local ports: the JDK says BindException too
        expect(BindException.class, Errno.socketException("connect", 3, Errno.EADDRNOTAVAIL), "connect", 3, Errno.EADDRNOTAVAIL);
        // EACCES elsewhere is not about an address
        var other = Errno.socketException("setsockopt(SO_RCVBUF)", 3, Errno.EACCES);
        assertFalse(other instanceof BindException, other.toString());
        expect(SocketException.class, other, "setsockopt(SO_RCVBUF)", 3, Errno.EACCES);
    }

    @Test
    void noRouteIsANoRouteToHostException() {
        expect(NoRouteToHostException.class, Errno.socketException("connect", 4, Errno.EHOSTUNREACH),
                "connect", 4, Errno.EHOSTUNREACH);
        expect(NoRouteToHostException.class, Errno.socketException("sendmsg", 4, Errno.ENETUNREACH),
                "sendmsg", 4, Errno.ENETUNREACH);
    }

    @Test
    void aResetOrBrokenPipeIsAStacklessSocketException() {
        for (int errno : new int[] {Errno.ECONNRESET, Errno.EPIPE}) {
            var e = Errno.socketException("read", 9, errno);
            expect(SocketException.class, e, "read", 9, errno);
            assertFalse(e instanceof ConnectException || e instanceof BindException, e.toString());
            assertEquals(0, e.getStackTrace().length, "peer-caused: no stack walked");
            var out = new StringWriter();
            e.printStackTrace(new PrintWriter(out));
            assertTrue(out.toString().contains("read(fd=9): " + Errno.name(errno)), out.toString());
        }
    }

    @Test
    void aLocalMistakeKeepsItsStack() {
        var e = Errno.socketException("setsockopt(TCP_NODELAY)", 9, Errno.EBADF);
        expect(SocketException.class, e, "setsockopt(TCP_NODELAY)", 9, Errno.EBADF);
        var trace = java.util.Arrays.asList(e.getStackTrace());
        assertTrue(trace.stream().anyMatch(f -> f.getClassName().equals(getClass().getName())), trace.toString());
        assertTrue(trace.stream().noneMatch(f -> f.getClassName().equals(e.getClass().getName())),
                "the trace starts where the failure was made, not in the exception's constructor: " + trace);
        var bind = Errno.socketException("bind", 9, Errno.EADDRINUSE);
        assertTrue(bind.getStackTrace().length > 0, "a busy port is the caller's business: keep the stack");
    }

    @Test
    void aTimeoutOfOursIsASocketTimeoutExceptionWithEtimedout() {
        SocketTimeoutException e = Errno.timedOut("connect", 6, "no connection within " + Duration.ofMillis(300));
        var f = assertInstanceOf(SyscallFailure.class, e);
        assertEquals("connect", f.call());
        assertEquals(6, f.fd());
        assertEquals(Errno.ETIMEDOUT, f.errno());
        assertEquals("connect(fd=6): timed out: no connection within PT0.3S", e.getMessage());
        assertEquals(0, e.getStackTrace().length);
    }

    @Test
    void otherCallsStaySyscallExceptionsAndMessagesAreLookedUpOnce() {
        var e = assertThrows(SyscallException.class, () -> Errno.check(-Errno.EMFILE, "epoll_create1", -1));
        assertEquals("epoll_create1(): EMFILE (Too many open files)", e.getMessage());
        assertInstanceOf(SyscallFailure.class, e);
        assertSame(Errno.name(Errno.EPIPE), Errno.name(Errno.EPIPE), "cached, not rebuilt per failure");
        assertSame(Errno.message(Errno.EPIPE), Errno.message(-Errno.EPIPE));
        assertEquals("E?4000", Errno.name(4000));
    }

    @Test
    void checkSocketPassesResultsAndThrowsTheMappedType() throws IOException {
        assertEquals(7, Errno.checkSocket(7, "socket", -1));
        var e = assertThrows(ConnectException.class, () -> Errno.checkSocket(-Errno.ECONNREFUSED, "connect", 8));
        assertEquals(8, ((SyscallFailure) e).fd());
    }
}
