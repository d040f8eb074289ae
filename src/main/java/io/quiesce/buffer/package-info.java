/**
 * Off-heap memory that belongs to one reactor: a confined arena for long-lived buffers and a pool
 * of fixed-size chunks for queued writes, so the steady-state I/O path allocates nothing.
 *
 * <ul>
 *   <li><b>Threads.</b> Everything here is confined to the thread that made it, in practice a
 *       reactor thread ({@link io.quiesce.buffer.ReactorMemory#of}); no method is thread-safe.</li>
 *   <li><b>Owns.</b> {@link io.quiesce.buffer.ReactorMemory} owns its arena and every chunk it
 *       made; a {@link io.quiesce.buffer.ChunkQueue} holds chunks only between acquire and
 *       release.</li>
 *   <li><b>Guarantees.</b> Memory is bounded: a chunk is returned to its pool when its bytes have
 *       been consumed, and a pool keeps at most its configured number of free chunks, freeing the
 *       rest at once (each chunk has its own confined arena).</li>
 * </ul>
 */
package io.quiesce.buffer;
