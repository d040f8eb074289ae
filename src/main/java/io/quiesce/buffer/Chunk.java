package io.quiesce.buffer;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * A fixed-size block of off-heap memory with a read and a write index: bytes in
 * {@code [readIndex, writeIndex)} are queued, bytes from {@code writeIndex} on are free. Made and
 * recycled by a {@link ReactorMemory}; confined to its thread.
 */
public final class Chunk {
    final Arena arena;
    final MemorySegment segment;
    final long address;
    int readIndex;
    int writeIndex;
    Chunk next;

    Chunk(int size) {
        this.arena = Arena.ofConfined();
        this.segment = arena.allocate(size, 64);
        this.address = segment.address();
    }

    /** {@return the whole chunk's memory} */
    public MemorySegment segment() {
        return segment;
    }

    /** {@return the native address of the first byte of the chunk} */
    public long address() {
        return address;
    }

    /** {@return the index of the first queued byte} */
    public int readIndex() {
        return readIndex;
    }

    /** {@return the index one past the last queued byte} */
    public int writeIndex() {
        return writeIndex;
    }

    /** {@return the number of queued bytes} */
    public int readableBytes() {
        return writeIndex - readIndex;
    }

    /** {@return the number of free bytes after the queued ones} */
    public int writableBytes() {
        return (int) segment.byteSize() - writeIndex;
    }

    void reset() {
        readIndex = 0;
        writeIndex = 0;
        next = null;
    }
}
