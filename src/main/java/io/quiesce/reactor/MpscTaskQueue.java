package io.quiesce.reactor;

import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.Objects;

/**
 * The reactor's task queue: unbounded, any number of producers, one consumer (the reactor
 * thread), built on {@link VarHandle}s alone, so Quiesce needs no {@code sun.misc.Unsafe}.
 *
 * <p><b>Layout.</b> Elements live in fixed-size chunks ({@value #CHUNK_SIZE} slots), linked
 * forward. A producer claims a sequence number with one {@code getAndAdd} on the producer index
 * (the only write producers contend on: no CAS retry loop, so a burst of producers costs one
 * atomic each), finds the chunk that holds that number, and stores its element there with release
 * semantics. The consumer reads the slots in sequence order, so the queue is FIFO overall and
 * per producer. A chunk is appended by whichever thread first needs it (one CAS on the previous
 * chunk's {@code next}; a loser drops its copy); a chunk the consumer has left is garbage.
 *
 * <p><b>Claimed but not yet filled.</b> Between a producer's {@code getAndAdd} and its store, the
 * queue already counts the element ({@link #size}, {@link #isEmpty}) while its slot still reads
 * {@code null}. {@link #poll} then waits for the store, which is two instructions away unless
 * the producer was preempted; it returns {@code null} only when no sequence number beyond the
 * consumer's has been claimed. That is the property the reactor's park protocol needs: it
 * publishes "parked" and then asks {@link #isEmpty}, while a producer claims its slot and then
 * reads "parked"; both are sequentially consistent accesses, so at least one of the two sees the
 * other, and a claimed slot keeps the reactor awake.
 *
 * @param <E> the element type
 */
final class MpscTaskQueue<E> extends MpscConsumerFields {
    /** Slots per chunk. */
    static final int CHUNK_SIZE = 1024;
    /**
     * Spins before a waiting consumer starts yielding. The producer is two instructions from its
     * store unless it was preempted, and then it is usually running again on another CPU soon: a
     * consumer that yields early gives up its own CPU to whatever else is runnable and, on a loaded
     * machine, may wait out whole time slices (with 128 spins, ReactorBench busy runs on a loaded
     * 2-core machine showed millisecond p99 far more often than with JCTools, which only spins).
     * Yielding after ~10^5 spins still keeps the case spinning cannot fix, a producer preempted on
     * the consumer's own CPU, from burning a full time slice.
     */
    private static final int SPINS_BEFORE_YIELD = 1 << 16;

    private static final VarHandle PRODUCER_INDEX;
    private static final VarHandle PRODUCER_CHUNK;
    private static final VarHandle CONSUMER_INDEX;
    private static final VarHandle CONSUMER_CHUNK;
    private static final VarHandle NEXT;
    private static final VarHandle SLOT = MethodHandles.arrayElementVarHandle(Object[].class);

    static {
        try {
            var lookup = MethodHandles.lookup();
            PRODUCER_INDEX = lookup.findVarHandle(MpscProducerFields.class, "producerIndex", long.class);
            PRODUCER_CHUNK = lookup.findVarHandle(MpscProducerFields.class, "producerChunk", Chunk.class);
            CONSUMER_INDEX = lookup.findVarHandle(MpscConsumerFields.class, "consumerIndex", long.class);
            CONSUMER_CHUNK = lookup.findVarHandle(MpscConsumerFields.class, "consumerChunk", Chunk.class);
            NEXT = lookup.findVarHandle(Chunk.class, "next", Chunk.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    /** Slots per chunk here: a power of two; {@value #CHUNK_SIZE} but in tests of chunk boundaries. */
    private final int chunkSize;
    private final int mask;

    /** An empty queue. */
    MpscTaskQueue() {
        this(CHUNK_SIZE);
    }

    /** An empty queue of {@code chunkSize}-slot chunks (a power of two). */
    MpscTaskQueue(int chunkSize) {
        if (chunkSize < 1 || Integer.bitCount(chunkSize) != 1) {
            throw new IllegalArgumentException("chunkSize must be a power of two: " + chunkSize);
        }
        this.chunkSize = chunkSize;
        this.mask = chunkSize - 1;
        Chunk first = new Chunk(0, chunkSize);
        producerChunk = first;
        consumerChunk = first;
    }

    /** Appends {@code e}; never fails, never blocks. Any thread. */
    void offer(E e) {
        Objects.requireNonNull(e, "element");
        long seq = (long) PRODUCER_INDEX.getAndAdd(this, 1L);
        Chunk c = chunkFor(seq);
        SLOT.setRelease(c.slots, (int) seq & mask, e);
    }

    /**
     * {@return the oldest element, or {@code null} if no producer has claimed a slot the consumer
     * has not yet taken} Waits out a producer that has claimed the next slot but not yet filled it.
     * Consumer thread only.
     */
    @SuppressWarnings("unchecked")
    E poll() {
        long seq = consumerIndex;
        Chunk c = consumerChunk;
        if (seq - c.base == chunkSize) { // this chunk is used up: step on only if something follows
            if ((long) PRODUCER_INDEX.getVolatile(this) == seq) {
                return null;
            }
            c = nextOf(c);
            CONSUMER_CHUNK.setRelease(this, c); // producers fall back to it (chunkFor)
        }
        int slot = (int) seq & mask;
        Object e = SLOT.getAcquire(c.slots, slot);
        if (e == null) {
            if ((long) PRODUCER_INDEX.getVolatile(this) == seq) {
                return null;
            }
            e = awaitFill(c.slots, slot);
        }
        c.slots[slot] = null; // only the consumer touches a filled slot; lets the task be collected
        CONSUMER_INDEX.setRelease(this, seq + 1);
        return (E) e;
    }

    /**
     * {@return whether no element is queued or being queued} Exact on the consumer thread; an
     * element whose slot is claimed but not yet filled counts as queued.
     */
    boolean isEmpty() {
        long consumed = (long) CONSUMER_INDEX.getAcquire(this);
        return (long) PRODUCER_INDEX.getVolatile(this) == consumed;
    }

    /**
     * {@return the number of elements queued or being queued} Exact on the consumer thread; from
     * another thread a recent estimate (the two indices are read one after the other), never
     * negative.
     */
    int size() {
        long consumed = (long) CONSUMER_INDEX.getAcquire(this); // first: the producer index only grows
        long claimed = (long) PRODUCER_INDEX.getVolatile(this);
        return (int) Math.min(Integer.MAX_VALUE, claimed - consumed);
    }

    /** The chunk holding sequence number {@code seq}, appending chunks as needed. */
    private Chunk chunkFor(long seq) {
        Chunk c = (Chunk) PRODUCER_CHUNK.getAcquire(this);
        if (c.base > seq) {
            // A later producer moved the hint past us while we were between getAndAdd and here.
            // The consumer cannot have passed seq (its slot is still empty), so its chunk starts
            // at or before seq.
            c = (Chunk) CONSUMER_CHUNK.getAcquire(this);
        }
        if (seq - c.base < chunkSize) {
            return c;
        }
        do {
            c = nextOf(c);
        } while (seq - c.base >= chunkSize);
        Chunk hint = (Chunk) PRODUCER_CHUNK.getAcquire(this);
        while (hint.base < c.base) { // move the hint forward only
            Chunk witness = (Chunk) PRODUCER_CHUNK.compareAndExchangeRelease(this, hint, c);
            if (witness == hint) {
                break;
            }
            hint = witness;
        }
        return c;
    }

    /** The chunk after {@code c}, appended if nobody has yet. */
    private static Chunk nextOf(Chunk c) {
        Chunk next = (Chunk) NEXT.getAcquire(c);
        if (next != null) {
            return next;
        }
        Chunk fresh = new Chunk(c.base + c.slots.length, c.slots.length);
        Chunk witness = (Chunk) NEXT.compareAndExchange(c, null, fresh);
        return witness == null ? fresh : witness;
    }

    private static Object awaitFill(Object[] slots, int slot) {
        Object e;
        for (int spins = 0; (e = SLOT.getAcquire(slots, slot)) == null; spins++) {
            if (spins < SPINS_BEFORE_YIELD) {
                Thread.onSpinWait();
            } else {
                Thread.yield();
            }
        }
        return e;
    }

    /** The slots for the sequence numbers {@code base .. base + slots.length - 1}. */
    static final class Chunk {
        final long base;
        final Object[] slots;
        @SuppressWarnings("unused") // through NEXT
        Chunk next;

        Chunk(long base, int size) {
            this.base = base;
            this.slots = new Object[size];
        }
    }
}

// The producers' index is written by every offer, the consumer's by every poll: padding keeps them
// on different cache lines (a superclass's fields are laid out before its subclass's), so neither
// side's writes invalidate the line the other side is working on.

@SuppressWarnings("unused")
abstract class MpscPad0 {
    long p00, p01, p02, p03, p04, p05, p06, p07;
}

abstract class MpscProducerFields extends MpscPad0 {
    /** Sequence numbers claimed so far: {@code getAndAdd} only. */
    long producerIndex;
    /** A recent chunk, where producers start looking; moves forward only. */
    MpscTaskQueue.Chunk producerChunk;
}

@SuppressWarnings("unused")
abstract class MpscPad1 extends MpscProducerFields {
    long p10, p11, p12, p13, p14, p15, p16, p17;
}

abstract class MpscConsumerFields extends MpscPad1 {
    /** Sequence numbers consumed so far: written by the consumer only (release), read plain by it. */
    long consumerIndex;
    /** The chunk holding {@code consumerIndex}, or the used-up one before it; consumer-written. */
    MpscTaskQueue.Chunk consumerChunk;
    @SuppressWarnings("unused")
    long p20, p21, p22, p23, p24, p25, p26, p27;
}
