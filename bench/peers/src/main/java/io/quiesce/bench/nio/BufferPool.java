package io.quiesce.bench.nio;

import java.nio.ByteBuffer;
import java.util.ArrayDeque;

/** A per-thread free list of equal-sized direct buffers: steady state allocates nothing. */
final class BufferPool {
    private final int size;
    private final ArrayDeque<ByteBuffer> free = new ArrayDeque<>();

    BufferPool(int size) {
        this.size = size;
    }

    int size() {
        return size;
    }

    ByteBuffer take() {
        ByteBuffer b = free.pollFirst();
        return b != null ? b.clear() : ByteBuffer.allocateDirect(size);
    }

    void give(ByteBuffer b) {
        if (free.size() < 4096) free.addFirst(b);
    }
}
