package io.quiesce.net;

import io.quiesce.reactor.Handle;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;

/** A connected socket's two addresses, asked of the kernel from any thread. */
final class SocketNames {
    private SocketNames() {}

    /**
     * {@code getpeername(2)} ({@code peer}) or {@code getsockname(2)} on {@code fd}, holding a
     * reference on {@code handle} for the call so the fd cannot be closed (and reused) under it.
     *
     * @throws IllegalStateException once the handle is closing, or if the call fails
     */
    static InetSocketAddress of(Handle handle, int fd, boolean peer) {
        if (!handle.tryRetain()) {
            throw new IllegalStateException("connection is closed");
        }
        try (Arena a = Arena.ofConfined()) {
            MemorySegment addr = a.allocate(SockAddr.MAX_SIZE, 8);
            MemorySegment len = a.allocate(ValueLayout.JAVA_INT);
            len.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
            Syscalls s = Syscalls.current();
            int r = peer ? s.getpeername(fd, addr, len) : s.getsockname(fd, addr, len);
            if (r < 0) {
                throw new IllegalStateException(Errno.socketException(peer ? "getpeername" : "getsockname", fd, -r));
            }
            return SockAddr.decode(addr);
        } finally {
            handle.release();
        }
    }
}
