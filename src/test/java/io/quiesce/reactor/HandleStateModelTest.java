package io.quiesce.reactor;

import org.jetbrains.lincheck.datastructures.ModelCheckingOptions;
import org.jetbrains.lincheck.datastructures.Operation;
import org.jetbrains.lincheck.datastructures.Param;
import org.jetbrains.lincheck.datastructures.StressOptions;
import org.jetbrains.lincheck.datastructures.ThreadIdGen;
import org.jetbrains.lincheck.datastructures.Validate;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * The handle's state machine ({@link RefCounted}) checked by Lincheck over every interleaving
 * its model checker reaches, then under real threads (stress mode): not a sample of the
 * schedules a race test happens to hit, but a bounded search of them.
 *
 * <p>Each Lincheck invocation builds a fresh instance of this class: one {@link Model} (a
 * {@code RefCounted} whose hook records itself and queues a reactor finish, like
 * {@code Reactor.lastReferenceDropped}) and the per-thread bookkeeping of which references each
 * scenario thread holds. Operations are the handle's: {@code tryRetain}, {@code release} (only of
 * a reference this thread holds), {@code close} ({@code beginClose}, then the close is handed to
 * the reactor), a bare {@code tryMarkClosed} (the class's own contract, with no caller checking
 * the count first) and the reactor's finish step. The reactor is one thread: its finishes are in
 * one non-parallel group, and each consumes one queued request (a close hand-off or a last-drop
 * wake-up), as the reactor only runs {@code finishCloses} when something woke it.
 *
 * <p>The finishes return nothing: a close's hand-off to the reactor follows its
 * {@code beginClose}, so a finish racing it may not see the request yet, which no sequential
 * order explains but is no fault (the request is still taken later).
 *
 * <p>Invariants, asserted where they can break (an {@code AssertionError} inside an operation
 * fails the check) and in {@link #validate()} once every thread is done:
 * <ul>
 *   <li>the resource is released at most once, and never while any reference is held;</li>
 *   <li>no {@code tryRetain} succeeds once a {@code beginClose} has returned;</li>
 *   <li>the hook fires at most once, only when CLOSING with no reference left;</li>
 *   <li>liveness: after a close and every release, the reactor, running only the requests it was
 *       given, releases the resource (a close can never be left waiting for a wake-up that never
 *       comes).</li>
 * </ul>
 * Linearizability of the results ({@code tryRetain}, {@code beginClose}) against a sequential run of the same
 * operations is checked by Lincheck on top.
 */
public class HandleStateModelTest {
    private static final int THREADS = 3;

    /** The state machine under test, with the reactor's side of the protocol modelled around it. */
    static final class Model extends RefCounted {
        final AtomicInteger hookFired = new AtomicInteger();
        final AtomicInteger released = new AtomicInteger();
        /** Finish requests queued for the reactor: close hand-offs and last-drop wake-ups. */
        final AtomicInteger finishRequests = new AtomicInteger();

        @Override
        void lastReferenceDropped() {
            if (hookFired.incrementAndGet() != 1) {
                throw new AssertionError("lastReferenceDropped fired twice");
            }
            if (isOpen() || references() != 0) {
                throw new AssertionError("lastReferenceDropped while " + stateString());
            }
            finishRequests.incrementAndGet(); // Reactor.lastReferenceDropped: a finishCloses task
        }

        /** The reactor's close step: CLOSING, no reference left, and the one winning mark. */
        boolean reactorFinish() {
            if (!isOpen() && references() == 0 && tryMarkClosed()) {
                onReleased();
                return true;
            }
            return false;
        }

        void onReleased() {
            if (released.incrementAndGet() != 1) {
                throw new AssertionError("released twice");
            }
        }
    }

    private final Model h = new Model();
    /** References held by each scenario thread (each slot touched only by its own thread). */
    private final int[] held = new int[THREADS + 1];
    private volatile boolean closeReturned;

    @Operation
    public boolean retain(@Param(gen = ThreadIdGen.class) int thread) {
        boolean closedBefore = closeReturned;
        boolean got = h.tryRetain();
        if (got) {
            if (closedBefore) {
                throw new AssertionError("tryRetain succeeded after beginClose returned");
            }
            held[thread]++;
            checkHeld();
        }
        return got;
    }

    @Operation
    public void release(@Param(gen = ThreadIdGen.class) int thread) {
        if (held[thread] == 0) {
            return; // only a reference this thread took may be dropped
        }
        checkHeld();
        held[thread]--;
        h.release();
    }

    @Operation
    public boolean close() {
        if (!h.beginClose()) {
            return false;
        }
        closeReturned = true;
        h.finishRequests.incrementAndGet(); // Handle.closeWith → Reactor.closeRequested
        return true;
    }

    /** RefCounted's own contract: {@code tryMarkClosed} wins at most once, only with no reference. */
    @Operation
    public void markClosed() {
        if (h.tryMarkClosed()) {
            h.onReleased();
        }
    }

    /** One wake-up of the single reactor thread: it runs its finish step if it was asked to. */
    @Operation(nonParallelGroup = "reactor")
    public void reactorFinish() {
        if (takeRequest()) {
            h.reactorFinish();
        }
    }

    /** A reference is held by this thread: the resource must not have been released. */
    private void checkHeld() {
        if (h.released.get() != 0) {
            throw new AssertionError("released while a reference is held (" + h.stateString() + ")");
        }
    }

    private boolean takeRequest() {
        int n;
        do {
            n = h.finishRequests.get();
            if (n == 0) {
                return false;
            }
        } while (!h.finishRequests.compareAndSet(n, n - 1));
        return true;
    }

    /** Every thread is done: drop the references left held, then let the reactor drain its requests. */
    @Validate
    public void validate() {
        for (int t = 0; t < held.length; t++) {
            while (held[t] > 0) {
                held[t]--;
                h.release();
            }
        }
        while (takeRequest()) {
            h.reactorFinish();
        }
        if (h.hookFired.get() > 1) {
            throw new AssertionError("hook fired " + h.hookFired.get() + " times");
        }
        if (closeReturned && h.released.get() != 1) {
            throw new AssertionError("closed, every reference dropped, yet not released: " + h.stateString()
                    + ", hook fired " + h.hookFired.get() + " times");
        }
        if (!closeReturned && (h.released.get() != 0 || !h.isOpen())) {
            throw new AssertionError("released or closing without a close: " + h.stateString());
        }
    }

    /** Bounded (a few seconds): the scenarios are small, and every mutant tried was found well within it. */
    @Test
    void modelChecking() {
        new ModelCheckingOptions()
                .threads(THREADS)
                .actorsPerThread(3)
                .actorsBefore(0)
                .actorsAfter(0)
                .iterations(10)
                .invocationsPerIteration(300)
                .check(HandleStateModelTest.class);
    }

    @Test
    void stress() {
        new StressOptions()
                .threads(THREADS)
                .actorsPerThread(4)
                .actorsBefore(0)
                .actorsAfter(0)
                .iterations(10)
                .invocationsPerIteration(400)
                .check(HandleStateModelTest.class);
    }
}
