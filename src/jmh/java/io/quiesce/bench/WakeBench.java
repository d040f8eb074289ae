package io.quiesce.bench;

import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.CompletionHandler;
import io.quiesce.uring.EpollBatch;
import io.quiesce.uring.Ring;
import io.quiesce.uring.TransportRing;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.locks.LockSupport;

/**
 * How one io_uring-transport thread wakes another that is parked in its ring, measured as a
 * ping-pong of {@value #RALLY} round trips (a round trip: A wakes parked B, B wakes parked A):
 * <ul>
 *   <li>{@code ringPingPong}, {@code wake=eventfd}: the waker writes the peer's eventfd, which
 *       the peer's epoll (edge-triggered, never read) reports through the {@code EPOLL_WAIT}
 *       its ring keeps in flight; the woken side re-arms that wait (an SQE in its next enter);</li>
 *   <li>{@code ringPingPong}, {@code wake=msgring}: the waker queues an {@code IORING_OP_MSG_RING}
 *       SQE ({@code CQE_SKIP_SUCCESS}) that rides the enter it parks with, and the kernel posts a
 *       CQE straight into the peer's ring (a {@code DEFER_TASKRUN} ring: as task work of the
 *       peer's thread, run when its enter waits); no eventfd write, no wait to re-arm;</li>
 *   <li>{@code reactorPingPong}: the same ping-pong through two real reactors of a group on the
 *       io_uring transport ({@code execute} from one reactor to the other, eventfd wakeups): what
 *       the loop adds around the wake.</li>
 * </ul>
 * The two ring threads are bare {@link TransportRing}s, built as a reactor builds its own (epoll
 * fd, wakeup eventfd registered edge-triggered, the same setup flags), so the difference is the
 * wake alone. The benchmark thread starts a rally and sleeps until it ends. Syscalls per round
 * trip are printed at the end of each trial.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@OperationsPerInvocation(WakeBench.RALLY)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class WakeBench {
    /** Round trips per invocation. */
    static final int RALLY = 1000;

    @Param({"eventfd", "msgring"})
    public String wake;

    private Side a;
    private Side b;
    private volatile Thread waiter;
    private volatile boolean rallyDone;

    @Setup(Level.Trial)
    public void setup() {
        boolean msgRing = wake.equals("msgring");
        a = new Side("A", msgRing);
        b = new Side("B", msgRing);
        a.peer = b;
        b.peer = a;
        a.start();
        b.start();
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        long trips = a.rallies * (long) RALLY;
        a.stop();
        b.stop();
        System.out.printf("%n[%s] per round trip: enters %.3f, eventfd writes %.3f, EPOLL_WAIT re-arms %.3f,"
                        + " MSG_RING sent %.3f (failed %d), wakes that found no ball %d%n", wake,
                (a.enters + b.enters) / (double) trips, (a.writes + b.writes) / (double) trips,
                (a.rearms + b.rearms) / (double) trips, (a.msgRings + b.msgRings) / (double) trips,
                a.msgRingFailures + b.msgRingFailures, a.idleWakes + b.idleWakes);
    }

    /** {@value #RALLY} round trips A → B → A; the benchmark thread sleeps meanwhile. */
    @Benchmark
    public void ringPingPong() {
        rallyDone = false;
        waiter = Thread.currentThread();
        a.rallies++;
        a.serve(2 * RALLY); // from a foreign thread: always the eventfd
        while (!rallyDone) {
            LockSupport.park(this);
        }
    }

    private void finished() {
        rallyDone = true;
        LockSupport.unpark(waiter);
    }

    /** A thread parked in its own {@link TransportRing}, woken with a ball to pass back. */
    private final class Side implements CompletionHandler {
        private static final int OP_WAKE = 1;
        private static final int OP_MSG_RING = 2;

        final String name;
        final boolean msgRing;
        final CompletableFuture<Void> ready = new CompletableFuture<>();
        Side peer;
        volatile int ringFd;
        volatile long wakeToken;
        volatile int wakeFd;
        /** Half-trips left, handed over by the peer; 0: nothing to do. */
        volatile int ball;
        volatile boolean stopping;
        private Thread thread;
        private TransportRing ring;
        private long msgToken;
        long rallies;
        // per-trial counters, read after the thread has stopped
        long enters, writes, rearms, msgRings, msgRingFailures, idleWakes;

        Side(String name, boolean msgRing) {
            this.name = name;
            this.msgRing = msgRing;
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

        private void run() {
            Syscalls sys = Syscalls.current();
            try (Arena arena = Arena.ofConfined()) {
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
            } catch (EpollBatch.UnavailableException | io.quiesce.sys.SyscallException e) {
                ready.completeExceptionally(e);
                throw new IllegalStateException(e);
            }
        }

        private void loop(Syscalls sys) throws io.quiesce.sys.SyscallException {
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
                msgRingFailures++; // only failures post a CQE (CQE_SKIP_SUCCESS)
            }
        }
    }

    // ------------------------------------------------------------------ through real reactors

    /** Two reactors of one group on the io_uring transport. */
    @State(Scope.Benchmark)
    public static class Reactors {
        ReactorGroup group;
        Reactor ra;
        Reactor rb;
        final AtomicLong done = new AtomicLong();
        volatile Thread waiter;

        @Setup(Level.Trial)
        public void setup() throws Exception {
            group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2).withIo(ReactorGroup.Io.URING));
            ra = group.reactor(0);
            rb = group.reactor(1);
            if (ra.io() != ReactorGroup.Io.URING || rb.io() != ReactorGroup.Io.URING) {
                throw new IllegalStateException("the io_uring transport is unavailable here");
            }
        }

        @TearDown(Level.Trial)
        public void tearDown() {
            group.close();
        }

        void pass(int halfTrips, boolean onA) {
            if (halfTrips == 0) {
                done.incrementAndGet();
                LockSupport.unpark(waiter);
                return;
            }
            (onA ? rb : ra).execute(() -> pass(halfTrips - 1, !onA));
        }
    }

    /** {@value #RALLY} round trips between two reactors' {@code execute}; the benchmark thread sleeps. */
    @Benchmark
    public void reactorPingPong(Reactors r) {
        long target = r.done.get() + 1;
        r.waiter = Thread.currentThread();
        r.ra.execute(() -> r.pass(2 * RALLY - 1, true));
        while (r.done.get() < target) {
            LockSupport.park(this);
        }
    }
}
