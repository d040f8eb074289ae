package io.quiesce.buffer;

import io.quiesce.sys.raw.Syscalls;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * A FIFO of bytes in pooled {@link Chunk}s: writes are copied in at the tail, and the head is
 * handed to the kernel as a {@code struct iovec} array ({@link #gather}) and consumed as it is
 * sent. A fully consumed chunk goes back to its pool at once, so an idle queue holds no memory.
 * Confined to its memory's thread.
 */
public final class ChunkQueue {
    /** Bytes per {@code struct iovec}, from the generated layout (through the raw table). */
    public static final long IOVEC_SIZE = Syscalls.IOVEC_SIZE;

    private final ReactorMemory memory;
    private Chunk head;
    private Chunk tail;
    private long readableBytes;

    /**
     * Makes an empty queue.
     *
     * @param memory where the chunks come from and go back to
     */
    public ChunkQueue(ReactorMemory memory) {
        this.memory = memory;
    }

    /** {@return the number of queued bytes} */
    public long readableBytes() {
        return readableBytes;
    }

    /** {@return whether no byte is queued} */
    public boolean isEmpty() {
        return readableBytes == 0;
    }

    /** {@return the first chunk, or null when empty} */
    public Chunk head() {
        return head;
    }

    /** {@return whether the queued bytes all lie in one chunk} */
    public boolean isSingleChunk() {
        return head != null && head == tail;
    }

    /**
     * Copies {@code src} to the tail.
     *
     * @param src the bytes to queue
     */
    public void append(MemorySegment src) {
        long off = 0;
        long left = src.byteSize();
        while (left > 0) {
            Chunk t = writableTail();
            int n = (int) Math.min(left, t.writableBytes());
            MemorySegment.copy(src, off, t.segment, t.writeIndex, n);
            t.writeIndex += n;
            off += n;
            left -= n;
            readableBytes += n;
        }
    }

    /**
     * Copies {@code src[offset, offset + length)} to the tail.
     *
     * @param src the array
     * @param offset first byte
     * @param length number of bytes
     */
    public void append(byte[] src, int offset, int length) {
        java.util.Objects.checkFromIndexSize(offset, length, src.length);
        while (length > 0) {
            Chunk t = writableTail();
            int n = Math.min(length, t.writableBytes());
            MemorySegment.copy(src, offset, t.segment, ValueLayout.JAVA_BYTE, t.writeIndex, n);
            t.writeIndex += n;
            offset += n;
            length -= n;
            readableBytes += n;
        }
    }

    private Chunk writableTail() {
        Chunk t = tail;
        if (t != null && t.writableBytes() > 0) {
            return t;
        }
        Chunk c = memory.acquire();
        if (t == null) {
            head = c;
        } else {
            t.next = c;
        }
        tail = c;
        return c;
    }

    /**
     * Describes the queued bytes, from the head, as {@code struct iovec}s.
     *
     * @param iov room for {@code maxEntries} iovecs ({@link #IOVEC_SIZE} bytes each)
     * @param maxEntries the most entries to fill
     * @return the number of entries filled (0 when empty)
     */
    public int gather(MemorySegment iov, int maxEntries) {
        int n = 0;
        for (Chunk c = head; c != null && n < maxEntries; c = c.next) {
            int len = c.readableBytes();
            if (len == 0) {
                continue;
            }
            long at = n * IOVEC_SIZE;
            iov.set(ValueLayout.JAVA_LONG, at + Syscalls.IOVEC_BASE_OFFSET, c.address + c.readIndex);
            iov.set(ValueLayout.JAVA_LONG, at + Syscalls.IOVEC_LEN_OFFSET, len);
            n++;
        }
        return n;
    }

    /**
     * {@return how many bytes the first {@code entries} entries of {@link #gather} cover}
     *
     * @param entries as returned by gather
     */
    public long gatheredBytes(int entries) {
        long sum = 0;
        int n = 0;
        for (Chunk c = head; c != null && n < entries; c = c.next) {
            if (c.readableBytes() > 0) {
                sum += c.readableBytes();
                n++;
            }
        }
        return sum;
    }

    /**
     * Drops {@code bytes} from the head (they were sent), returning emptied chunks to the pool.
     *
     * @param bytes at most {@link #readableBytes()}
     */
    public void consume(long bytes) {
        if (bytes < 0 || bytes > readableBytes) {
            throw new IllegalArgumentException("consume " + bytes + " of " + readableBytes);
        }
        readableBytes -= bytes;
        while (head != null) {
            Chunk c = head;
            int n = (int) Math.min(bytes, c.readableBytes());
            c.readIndex += n;
            bytes -= n;
            if (c.readableBytes() > 0) {
                return;
            }
            head = c.next;
            if (head == null) {
                tail = null;
            }
            memory.release(c);
            if (bytes == 0) {
                return;
            }
        }
    }

    /** Drops everything queued, returning every chunk to the pool. */
    public void clear() {
        while (head != null) {
            Chunk c = head;
            head = c.next;
            memory.release(c);
        }
        tail = null;
        readableBytes = 0;
    }
}
