package io.quiesce.uring;

import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.io_uring_buf;
import io.quiesce.sys.linux.io_uring_buf_reg;
import io.quiesce.sys.linux.io_uring_buf_ring;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * A provided-buffer ring ({@code IORING_REGISTER_PBUF_RING}, 5.19+): {@code count} buffers of
 * {@code bufferSize} bytes the kernel picks from for a receive flagged
 * {@code IOSQE_BUFFER_SELECT} with this {@linkplain #groupId() group}; the CQE names the buffer it
 * filled ({@link Ring#bufferId}). A buffer belongs to the application from that CQE until it is
 * {@linkplain #recycle recycled} and {@linkplain #publish published} again.
 *
 * <p><b>Memory order.</b> The ring is shared with the kernel like the SQ: entries are written
 * plainly, then handed over by a <em>store-release</em> of the 16-bit tail, so the kernel never
 * sees a tail before the entries below it. Until then recycled entries stay ours.
 *
 * <p>One thread (the ring's), like {@link Ring}. The ring and the buffers live in that thread's
 * arena; {@link #close()} unregisters the group (the memory goes with the arena).
 */
public final class BufferRing implements AutoCloseable {
    private static final long ENTRY_SIZE = io_uring_buf.layout().byteSize();
    private static final long ENTRY_ADDR = io_uring_buf.addr$offset();
    private static final long ENTRY_LEN = io_uring_buf.len$offset();
    private static final long ENTRY_BID = io_uring_buf.bid$offset();
    private static final long TAIL = io_uring_buf_ring.tail$offset();
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.varHandle();
    private static final long PAGE = 4096;

    private final UringCalls calls;
    private final Ring ring;
    private final MemorySegment entries;
    private final MemorySegment buffers;
    private final MemorySegment reg;
    private final int groupId;
    private final int count;
    private final int mask;
    private final int bufferSize;
    /** Our tail: entries added so far; published by {@link #publish()}. */
    private int tail;
    private int published;
    private boolean closed;

    private BufferRing(UringCalls calls, Ring ring, MemorySegment entries, MemorySegment buffers,
                       MemorySegment reg, int groupId, int count, int bufferSize) {
        this.calls = calls;
        this.ring = ring;
        this.entries = entries;
        this.buffers = buffers;
        this.reg = reg;
        this.groupId = groupId;
        this.count = count;
        this.mask = count - 1;
        this.bufferSize = bufferSize;
    }

    /**
     * Allocates the ring and the buffers, registers the group with {@code ring} and hands every
     * buffer to the kernel.
     *
     * @param count buffers: a power of two, at most 32768
     * @param bufferSize bytes per buffer
     * @throws SyscallException naming {@code io_uring_register(PBUF_RING)} and the errno
     *     ({@code EINVAL} before 5.19, {@code EEXIST} for a group already registered)
     */
    public static BufferRing register(UringCalls calls, Ring ring, Arena arena, int groupId, int count,
                                      int bufferSize) throws SyscallException {
        if (count < 1 || count > 32768 || Integer.bitCount(count) != 1) {
            throw new IllegalArgumentException("count must be a power of two up to 32768: " + count);
        }
        if (bufferSize < 1) {
            throw new IllegalArgumentException("bufferSize must be positive: " + bufferSize);
        }
        // The kernel maps the ring's pages: page-aligned, zeroed (the tail starts at 0).
        MemorySegment entries = arena.allocate(Math.max(PAGE, count * ENTRY_SIZE), PAGE);
        MemorySegment buffers = arena.allocate((long) count * bufferSize, 64);
        MemorySegment reg = arena.allocate(io_uring_buf_reg.layout());
        io_uring_buf_reg.ring_addr(reg, entries.address());
        io_uring_buf_reg.ring_entries(reg, count);
        io_uring_buf_reg.bgid(reg, (short) groupId);
        int r = calls.register(ring.fd(), LinuxH.IORING_REGISTER_PBUF_RING(), reg, 1);
        if (r < 0) {
            throw new SyscallException("io_uring_register(PBUF_RING group " + groupId + ")", ring.fd(), -r);
        }
        var b = new BufferRing(calls, ring, entries, buffers, reg, groupId, count, bufferSize);
        for (int i = 0; i < count; i++) {
            b.recycle(i);
        }
        b.publish();
        return b;
    }

    /** {@return buffer {@code bid}, all {@link #bufferSize()} bytes of it} */
    public MemorySegment buffer(int bid) {
        return buffers.asSlice((long) bid * bufferSize, bufferSize);
    }

    /** {@return the address of buffer {@code bid}} */
    public long address(int bid) {
        return buffers.address() + (long) bid * bufferSize;
    }

    /** Gives buffer {@code bid} back (seen by the kernel after the next {@link #publish()}). */
    public void recycle(int bid) {
        long at = (long) (tail & mask) * ENTRY_SIZE;
        entries.set(ValueLayout.JAVA_LONG, at + ENTRY_ADDR, address(bid));
        entries.set(ValueLayout.JAVA_INT, at + ENTRY_LEN, bufferSize);
        entries.set(ValueLayout.JAVA_SHORT, at + ENTRY_BID, (short) bid);
        tail++;
    }

    /**
     * Hands the recycled buffers to the kernel (store-release of the tail).
     *
     * @return how many were handed over (0: nothing recycled since the last publish)
     */
    public int publish() {
        int n = tail - published;
        if (n != 0) {
            U16.setRelease(entries, TAIL, (short) tail);
            published = tail;
        }
        return n;
    }

    /** {@return the buffer group id} */
    public int groupId() {
        return groupId;
    }

    /** {@return the number of buffers} */
    public int count() {
        return count;
    }

    /** {@return the size of each buffer} */
    public int bufferSize() {
        return bufferSize;
    }

    /** Unregisters the group ({@code IORING_UNREGISTER_PBUF_RING}); idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        calls.register(ring.fd(), LinuxH.IORING_UNREGISTER_PBUF_RING(), reg, 1);
    }
}
