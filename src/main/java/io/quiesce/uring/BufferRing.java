package io.quiesce.uring;

import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.io_uring_buf;
import io.quiesce.sys.linux.io_uring_buf_reg;
import io.quiesce.sys.linux.io_uring_buf_ring;

import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;

/**
 * A provided buffer ring ({@code IORING_REGISTER_PBUF_RING}, 5.19+): {@code count} buffers of
 * {@code bufferSize} bytes that the kernel picks from itself for a receive submitted with
 * {@link Ring#SQE_BUFFER_SELECT} and this group id ({@link Ring#prepRecvMultishot}), so a
 * receive need not own a buffer while it waits. The CQE names the buffer it filled
 * ({@link Ring#bufferId(int)}); from then on the buffer is the caller's until it gives it back
 * with {@link #recycle(int)} and {@link #publish()}.
 *
 * <p><b>The shared ring.</b> An array of {@code struct io_uring_buf} (address, length, bid) in
 * page-aligned memory of ours that the kernel pins. We are the only producer: we write entries
 * at our tail and publish it; the kernel consumes from its head, which it keeps to itself. The
 * tail is a u16 overlaid on the first entry's {@code resv} field (the uapi's
 * {@code io_uring_buf_ring} union), so entry 0 is written field by field, never as a whole.
 * Memory order as for the SQ ({@link Ring}): entries are plain stores, then the tail is a
 * <em>store-release</em>, so the kernel, which reads the tail with acquire, never sees an entry
 * before it is complete.
 *
 * <p><b>Threads.</b> The ring's thread only, like the {@link Ring} it is registered on.
 *
 * <p><b>Lifetime.</b> The ring memory and the buffers come from the caller's arena and must
 * outlive the registration: {@link #close()} unregisters, and a {@link Ring#close()} releases the
 * registration with the ring.
 */
public final class BufferRing implements AutoCloseable {
    private static final long ENTRY_SIZE = io_uring_buf.layout().byteSize();
    private static final long ENTRY_ADDR = io_uring_buf.addr$offset();
    private static final long ENTRY_LEN = io_uring_buf.len$offset();
    private static final long ENTRY_BID = io_uring_buf.bid$offset();
    private static final long TAIL = io_uring_buf_ring.tail$offset();
    private static final VarHandle U16 = ValueLayout.JAVA_SHORT.varHandle();
    /** The kernel refuses {@code ring_entries >= 65536}; the largest power of two below. */
    private static final int MAX_COUNT = 1 << 15;

    private final UringCalls calls;
    private final Ring ring;
    private final int groupId;
    private final int count;
    private final int mask;
    private final int bufferSize;
    private final MemorySegment entries;
    private final MemorySegment buffers;
    private final MemorySegment reg;
    /** Our tail: entries written so far, modulo 2^16 like the kernel's u16. */
    private int tail;
    /** Entries written since the last {@link #publish()}. */
    private int unpublished;
    private boolean closed;

    private BufferRing(UringCalls calls, Ring ring, int groupId, int count, int bufferSize,
                       MemorySegment entries, MemorySegment buffers, MemorySegment reg) {
        this.calls = calls;
        this.ring = ring;
        this.groupId = groupId;
        this.count = count;
        this.mask = count - 1;
        this.bufferSize = bufferSize;
        this.entries = entries;
        this.buffers = buffers;
        this.reg = reg;
    }

    /**
     * Registers a buffer ring of {@code count} buffers on {@code ring}, every buffer given to
     * the kernel.
     *
     * @param calls the ring thread's io_uring calls
     * @param ring the ring whose receives select from this group
     * @param arena where the ring (page-aligned, whole pages: the kernel pins pages) and the
     *     buffers (one contiguous segment, buffer {@code bid} at {@code bid * bufferSize}) live
     * @param groupId the buffer group id, 0..65535, unique on this ring
     * @param count buffers, a power of two up to 32768
     * @param bufferSize bytes per buffer
     * @return the registered ring
     * @throws SyscallException naming {@code io_uring_register(PBUF_RING)}: {@code EINVAL} before
     *     5.19, {@code EEXIST} if the group id is taken
     */
    public static BufferRing register(UringCalls calls, Ring ring, Arena arena, int groupId,
                                      int count, int bufferSize) throws SyscallException {
        if (count <= 0 || count > MAX_COUNT || Integer.bitCount(count) != 1) {
            throw new IllegalArgumentException("count must be a power of two in 1.." + MAX_COUNT
                    + ": " + count);
        }
        if (groupId < 0 || groupId > 0xFFFF) {
            throw new IllegalArgumentException("groupId must fit a u16: " + groupId);
        }
        if (bufferSize <= 0) {
            throw new IllegalArgumentException("bufferSize must be positive: " + bufferSize);
        }
        long page = UringCalls.pageSize();
        long ringBytes = (count * ENTRY_SIZE + page - 1) / page * page;
        var entries = arena.allocate(ringBytes, page);
        var buffers = arena.allocate((long) count * bufferSize, page);
        var reg = arena.allocate(io_uring_buf_reg.layout());
        io_uring_buf_reg.ring_addr(reg, entries.address());
        io_uring_buf_reg.ring_entries(reg, count);
        io_uring_buf_reg.bgid(reg, (short) groupId);
        int r = calls.register(ring.fd(), LinuxH.IORING_REGISTER_PBUF_RING(), reg, 1);
        if (r < 0) {
            throw new SyscallException("io_uring_register(PBUF_RING, bgid=" + groupId + ")",
                    ring.fd(), -r);
        }
        var br = new BufferRing(calls, ring, groupId, count, bufferSize, entries, buffers, reg);
        for (int bid = 0; bid < count; bid++) {
            br.recycle(bid);
        }
        br.publish();
        return br;
    }

    /** {@return the buffer group id receives name in {@code sqe->buf_group}} */
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

    /**
     * {@return buffer {@code bid}, whole ({@link #bufferSize()} bytes): a CQE's res says how
     * many of them the kernel filled}
     */
    public MemorySegment buffer(int bid) {
        checkBid(bid);
        return buffers.asSlice((long) bid * bufferSize, bufferSize);
    }

    /**
     * Gives buffer {@code bid} back to the kernel: written at our tail, seen by the kernel after
     * the next {@link #publish()}. Each buffer must be given back once per time the kernel
     * handed it out (a buffer in the ring twice would be filled twice).
     *
     * @throws IllegalStateException if more buffers are pending than the ring holds
     */
    public void recycle(int bid) {
        checkBid(bid);
        if (unpublished == count) {
            throw new IllegalStateException("more than " + count + " buffers recycled unpublished");
        }
        long at = (long) ((tail + unpublished) & mask) * ENTRY_SIZE;
        // Field by field: entry 0's resv is the ring's tail.
        entries.set(ValueLayout.JAVA_LONG, at + ENTRY_ADDR, buffers.address() + (long) bid * bufferSize);
        entries.set(ValueLayout.JAVA_INT, at + ENTRY_LEN, bufferSize);
        entries.set(ValueLayout.JAVA_SHORT, at + ENTRY_BID, (short) bid);
        unpublished++;
    }

    /** Makes the recycled buffers visible to the kernel (store-release of the u16 tail). */
    public void publish() {
        if (unpublished == 0) {
            return;
        }
        tail = (tail + unpublished) & 0xFFFF;
        unpublished = 0;
        U16.setRelease(entries, TAIL, (short) tail);
    }

    private void checkBid(int bid) {
        if (bid < 0 || bid >= count) {
            throw new IndexOutOfBoundsException("bid " + bid + " of " + count);
        }
    }

    /**
     * Unregisters the group ({@code IORING_UNREGISTER_PBUF_RING}); idempotent. Nothing to do
     * once the ring is closed (closing it released the group).
     *
     * @throws UncheckedIOException carrying the {@link SyscallException} if the kernel refuses
     *     (it cannot, for a group this object registered on an open ring)
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (ring.isClosed()) {
            return;
        }
        int r = calls.register(ring.fd(), LinuxH.IORING_UNREGISTER_PBUF_RING(), reg, 1);
        if (r < 0) {
            throw new UncheckedIOException(new SyscallException(
                    "io_uring_register(UNREGISTER_PBUF_RING, bgid=" + groupId + ")", ring.fd(), -r));
        }
    }
}
