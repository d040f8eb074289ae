package io.quiesce.bench;

import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.CompletionHandler;
import io.quiesce.uring.EpollBatch;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.locks.LockSupport;

/**
 * Two threads, each parked in its own {@link TransportRing} built as a reactor builds its ring
 * (epoll fd, wakeup eventfd registered edge-triggered and never read, the default setup flags:
 * {@code SINGLE_ISSUER | DEFER_TASKRUN} here), passing a ball back and forth: a side woken with
 * the ball hands it to its peer and wakes it, by an eventfd write or by an
 * {@code IORING_OP_MSG_RING} SQE ({@code CQE_SKIP_SUCCESS}) that rides the enter it parks with.
 * A rally is started from the caller's thread (an eventfd write, the only wake a thread without a
 * ring can make) and the caller sleeps until it ends. For {@link WakeBench} and
 * {@link WakeInterleaved}.
 */
final class WakePair implements AutoCloseable {
    private final Side a;
    private final Side b;
    /** How the sides wake each other: read at each hand-off, switched only between rallies. */
    volatile boolean msgRing;
    private volatile Thread waiter;
    private volatile boolean rallyDone;
    long rallies;

    /** Starts both threads, pinned to {@code cpuA} and {@code cpuB} unless negative. */
    WakePair(int cpuA, int cpuB) {
        a = new Side("A", cpuA);
        b = new Side("B", cpuB);
        a.peer = b;
        b.peer = a;
        a.start();
        b.start();
    }

    /** {@code roundTrips} round trips A → B → A; returns when the last one is back. */
    void rally(int roundTrips) {
        rallyDone = false;
        waiter = Thread.currentThread();
        rallies++;
        a.serve(2 * roundTrips);
        while (!rallyDone) {
            LockSupport.park(this);
        }
    }

    /** {@return both threads' time on a CPU so far, user and kernel (their schedstat)} */
    long cpuNanos() {
        return a.cpuNanos() + b.cpuNanos();
    }

    /** Stops both threads; the counters below are final afterwards. */
    @Override
    public void close() throws InterruptedException {
        a.stop();
        b.stop();
    }

    /** {@return a line of per-round-trip counts over every rally, after {@link #close}} */
    String counts(long roundTrips) {
        double t = roundTrips;
        return String.format("enters %.3f, eventfd writes %.3f, EPOLL_WAIT re-arms %.3f, MSG_RING sent %.3f"
                        + " (failed %d), wakes that found no ball %d",
                (a.enters + b.enters) / t, (a.writes + b.writes) / t, (a.rearms + b.rearms) / t,
                (a.msgRings + b.msgRings) / t, a.msgRingFailures + b.msgRingFailures, a.idleWakes + b.idleWakes);
    }

    private void finished() {
        rallyDone = true;
        LockSupport.unpark(waiter);
    }

    /** One thread parked in its own ring, woken with the ball to pass on. */
    private final class Side implements CompletionHandler {
        private static final int OP_WAKE = 1;
        private static final int OP_MSG_RING = 2;

        final String name;
        final int cpu;
        final CompletableFuture<Void> ready = new CompletableFuture<>();
        Side peer;
        volatile int ringFd;
        volatile long wakeToken;
        volatile int wakeFd;
        volatile Path schedstat;
        /** Half-trips left, handed over by the peer; 0: nothing to do. */
        volatile int ball;
        volatile boolean stopping;
        private Thread thread;
        private TransportRing ring;
        private long msgToken;
        // written by the side's thread, read once it has stopped
        long enters, writes, rearms, msgRings, msgRingFailures, idleWakes;

        Side(String name, int cpu) {
            this.name = name;
            this.cpu = cpu;
        }

        void start() {
            thread = Thread.ofPlatform().name("wake-" + name).start(this::run);
            ready.join();
        }

        void stop() throws InterruptedException {
            stopping = true;
            Syscalls.current().eventfdWrite(wakeFd, 1);
            thread.join();
        }

        /** Any thread but this side's: hands over the ball and wakes this side (eventfd). */
        void serve(int halfTrips) {
            ball = halfTrips;
            Syscalls.current().eventfdWrite(wakeFd, 1);
        }

        long cpuNanos() {
            try {
                String s = Files.readString(schedstat);
                return Long.parseLong(s.substring(0, s.indexOf(' ')));
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        private void run() {
            Syscalls sys = Syscalls.current();
            try (Arena arena = Arena.ofConfined()) {
                if (cpu >= 0 && sys.pinCurrentThread(cpu) < 0) {
                    throw new IllegalStateException("sched_setaffinity(" + cpu + ") refused");
                }
                schedstat = Path.of("/proc/self/task").resolve(Files.readSymbolicLink(Path.of("/proc/thread-self"))
                        .getFileName()).resolve("schedstat");
                int epfd = sys.epollCreate();
                int efd = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
                sys.epollCtl(epfd, Syscalls.EPOLL_CTL_ADD, efd, Syscalls.EPOLLIN | Syscalls.EPOLLET, -1L);
                MemorySegment events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * 16, 8);
                ring = TransportRing.open(epfd, events, 16, arena, TransportRing.Options.defaults().withBuffers(8, 4096));
                int slot = ring.register(this);
                wakeFd = efd;
                wakeToken = ring.token(slot, OP_WAKE);
                msgToken = ring.token(slot, OP_MSG_RING);
                ringFd = ring.ring().fd();
                ready.complete(null);
                loop(sys);
                ring.close();
                sys.close(efd);
                sys.close(epfd);
            } catch (EpollBatch.UnavailableException | IOException | RuntimeException e) {
                ready.completeExceptionally(e);
                throw new IllegalStateException(e);
            }
        }

        private void loop(Syscalls sys) throws SyscallException {
            while (!stopping) {
                ring.await(-1);
                ring.dispatch();
                int k = ball;
                if (k == 0) {
                    idleWakes++;
                    continue;
                }
                ball = 0;
                if (k == 1) {
                    finished();
                    continue;
                }
                peer.ball = k - 1;
                if (msgRing) {
                    long sqe = ring.sqe();
                    ring.ring().prepMsgRing(sqe, peer.ringFd, 0, peer.wakeToken, msgToken);
                    ring.ring().sqeFlags(sqe, Ring.SQE_CQE_SKIP_SUCCESS);
                    msgRings++;
                } else {
                    sys.eventfdWrite(peer.wakeFd, 1);
                    writes++;
                }
            }
            enters = ring.enters();
            rearms = ring.sqesSubmitted() - msgRings; // every other SQE is the wait's
        }

        @Override
        public void onCompletion(int op, int res, int flags) {
            if (op == OP_MSG_RING) {
                msgRingFailures++; // only a failure posts a CQE (CQE_SKIP_SUCCESS)
            }
        }

        @Override
        public void ringLost() {
            // a benchmark's ring is never abandoned
        }
    }
}
