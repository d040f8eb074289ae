package io.quiesce.net;

import io.quiesce.buffer.ChunkQueue;
import io.quiesce.buffer.ReactorMemory;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.TransportRing;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * What the net layer keeps per reactor, made on the reactor's thread on first use
 * ({@link ReactorInternals#local}): its own syscall table (errno capture and scratch), the one read buffer
 * every connection of the reactor reads into, the iovec array for gathering sends, and the write
 * chunk pool. Reactor thread only; looked up once per connection, never per event.
 */
final class NetContext {
    static final int READ_BUFFER_SIZE = 64 * 1024;
    /** iovecs per {@code sendmsg}: 64 chunks of 16 KiB, 1 MiB per call at most. */
    static final int MAX_IOV = 64;

    final Reactor reactor;
    /** This layer's counters on this reactor: accepts, connections and bytes (single writer). */
    final NetStats stats;
    final Syscalls sys;
    final ReactorMemory memory;
    final MemorySegment readBuffer;
    final MemorySegment iov;
    final MemorySegment sockAddr;
    final MemorySegment sockAddrLen;
    /** The last slice handed to {@code onRead}: reused while reads keep the same length. */
    private MemorySegment lastSlice;
    /** The reactor's io_uring transport ring, or null on epoll. */
    final TransportRing transport;
    /** io_uring: the last slice of each provided buffer handed to {@code onRead}. */
    private final MemorySegment[] bufferSlices;
    /** io_uring: msghdr + iovec blocks for the sendmsgs in flight (each lives until its CQE). */
    private final java.util.ArrayDeque<MemorySegment> sendBlocks = new java.util.ArrayDeque<>();

    private NetContext(Reactor reactor) {
        this.reactor = reactor;
        this.stats = NetStats.of(reactor);
        this.memory = ReactorMemory.of(reactor);
        Arena a = memory.arena();
        this.sys = new Syscalls(a);
        this.readBuffer = a.allocate(READ_BUFFER_SIZE, 64);
        this.iov = a.allocate(ChunkQueue.IOVEC_SIZE * MAX_IOV, 8);
        this.sockAddr = a.allocate(SockAddr.MAX_SIZE, 8);
        this.sockAddrLen = a.allocate(ValueLayout.JAVA_INT);
        this.lastSlice = readBuffer.asSlice(0, 0);
        this.transport = ReactorInternals.transport(reactor);
        this.bufferSlices = transport == null ? null : new MemorySegment[transport.buffers().count()];
    }

    /** io_uring: {@return the first {@code n} bytes of provided buffer {@code bid}} Reuses the last slice of that length. */
    MemorySegment bufferSlice(int bid, int n) {
        MemorySegment s = bufferSlices[bid];
        if (s == null || s.byteSize() != n) {
            s = transport.buffers().buffer(bid).asSlice(0, n);
            bufferSlices[bid] = s;
        }
        return s;
    }

    /** io_uring: a msghdr with room for {@link #MAX_IOV} iovecs behind it, until {@link #releaseSendBlock}. */
    MemorySegment acquireSendBlock() {
        MemorySegment b = sendBlocks.poll();
        return b != null ? b : memory.arena().allocate(TransportRing.MSGHDR_SIZE + ChunkQueue.IOVEC_SIZE * MAX_IOV, 8);
    }

    void releaseSendBlock(MemorySegment b) {
        sendBlocks.push(b);
    }

    static NetContext of(Reactor reactor) {
        return ReactorInternals.local(reactor, NetContext.class, () -> new NetContext(reactor));
    }

    /**
     * {@return the first {@code n} bytes of the read buffer} A slice is an immutable view, so the
     * one made for the previous read is handed out again when the length is the same: steady
     * traffic of equal-sized messages allocates nothing per read.
     */
    MemorySegment readSlice(long n) {
        MemorySegment s = lastSlice;
        if (s.byteSize() != n) {
            s = readBuffer.asSlice(0, n);
            lastSlice = s;
        }
        return s;
    }

    /**
     * Sets the socket options that differ from the kernel's defaults on {@code fd} (a listening
     * socket, whose accepted sockets inherit them, or a client socket).
     */
    static void applySocketOptions(Syscalls sys, int fd, ConnectionOptions o) throws IOException {
        if (o.tcpNoDelay()) {
            Errno.checkSocket(sys.setsockopt(fd, Syscalls.IPPROTO_TCP, Syscalls.TCP_NODELAY, 1), "setsockopt(TCP_NODELAY)", fd);
        }
        if (o.keepAlive()) {
            Errno.checkSocket(sys.setsockopt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_KEEPALIVE, 1), "setsockopt(SO_KEEPALIVE)", fd);
        }
        if (o.receiveBufferSize() > 0) {
            Errno.checkSocket(sys.setsockopt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_RCVBUF, o.receiveBufferSize()), "setsockopt(SO_RCVBUF)", fd);
        }
        if (o.sendBufferSize() > 0) {
            Errno.checkSocket(sys.setsockopt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_SNDBUF, o.sendBufferSize()), "setsockopt(SO_SNDBUF)", fd);
        }
        if (o.resetOnClose()) {
            Errno.checkSocket(sys.setLinger(fd, true, 0), "setsockopt(SO_LINGER)", fd);
        }
    }

}
