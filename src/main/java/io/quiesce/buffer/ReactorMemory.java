package io.quiesce.buffer;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.internal.ReactorInternals;

import java.lang.foreign.Arena;

/**
 * The off-heap memory of one reactor: a confined {@link Arena} for buffers that live as long as
 * the reactor (the read buffer, iovec arrays, syscall scratch), and a pool of {@link Chunk}s for
 * queued writes.
 *
 * <p><b>Bounded.</b> Every chunk has its own confined arena, so a chunk the pool does not keep is
 * freed at once: the pool keeps at most {@code maxPooledChunks} free chunks, and memory in use is
 * what the connections have queued (which their write watermarks bound), nothing more.
 *
 * <p><b>Threads.</b> Confined to the thread that made it; {@link #of(Reactor)} makes one per
 * reactor, on the reactor's thread, closed by the reactor when it stops.
 */
public final class ReactorMemory implements AutoCloseable {
    /** Size of a write chunk: 16 KiB. */
    public static final int CHUNK_SIZE = 16 * 1024;
    /** Free chunks a reactor's pool keeps by default (4 MiB). */
    public static final int DEFAULT_MAX_POOLED_CHUNKS = 256;

    private final Arena arena = Arena.ofConfined();
    private final int chunkSize;
    private final Chunk[] free;
    private int freeCount;
    private long chunksAllocated;
    private long chunksFreed;
    private int chunksInUse;
    private boolean closed;

    /**
     * Makes the memory of the calling thread.
     *
     * @param chunkSize bytes per chunk, at least 64
     * @param maxPooledChunks free chunks to keep for reuse, at least 0
     */
    public ReactorMemory(int chunkSize, int maxPooledChunks) {
        if (chunkSize < 64 || maxPooledChunks < 0) {
            throw new IllegalArgumentException("chunkSize >= 64 and maxPooledChunks >= 0 needed: "
                    + chunkSize + ", " + maxPooledChunks);
        }
        this.chunkSize = chunkSize;
        this.free = new Chunk[maxPooledChunks];
    }

    /**
     * {@return the memory of {@code reactor}, made on first use} Reactor thread only.
     *
     * @param reactor the calling thread's reactor
     * @throws IllegalStateException if called from another thread
     */
    public static ReactorMemory of(Reactor reactor) {
        return ReactorInternals.local(reactor, ReactorMemory.class,
                () -> new ReactorMemory(CHUNK_SIZE, DEFAULT_MAX_POOLED_CHUNKS));
    }

    /** {@return the confined arena for memory that lives as long as this object} */
    public Arena arena() {
        return arena;
    }

    /** {@return the size of each chunk} */
    public int chunkSize() {
        return chunkSize;
    }

    /** {@return an empty chunk, from the pool if it has one} */
    public Chunk acquire() {
        if (closed) {
            throw new IllegalStateException("reactor memory is closed");
        }
        chunksInUse++;
        if (freeCount > 0) {
            Chunk c = free[--freeCount];
            free[freeCount] = null;
            return c;
        }
        chunksAllocated++;
        return new Chunk(chunkSize);
    }

    /**
     * Returns {@code c} to the pool, or frees it if the pool is full.
     *
     * @param c a chunk from {@link #acquire()}
     */
    public void release(Chunk c) {
        chunksInUse--;
        c.reset();
        if (!closed && freeCount < free.length) {
            free[freeCount++] = c;
        } else {
            chunksFreed++;
            c.arena.close();
        }
    }

    /** {@return chunks made so far} */
    public long chunksAllocated() {
        return chunksAllocated;
    }

    /** {@return chunks freed so far because the pool was full} */
    public long chunksFreed() {
        return chunksFreed;
    }

    /** {@return chunks acquired and not yet released} */
    public int chunksInUse() {
        return chunksInUse;
    }

    /** {@return free chunks kept for reuse} */
    public int chunksPooled() {
        return freeCount;
    }

    /** Frees the pooled chunks and the arena; chunks still in use are freed when released. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        while (freeCount > 0) {
            Chunk c = free[--freeCount];
            free[freeCount] = null;
            c.arena.close();
        }
        arena.close();
    }

    @Override
    public String toString() {
        return "ReactorMemory[chunks in use=" + chunksInUse + ", pooled=" + freeCount
                + ", allocated=" + chunksAllocated + "]";
    }
}
