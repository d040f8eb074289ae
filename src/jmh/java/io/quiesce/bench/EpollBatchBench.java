package io.quiesce.bench;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.EpollBatch;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;

/**
 * What one reactor iteration's "flush k pending interest changes + wait(0)" costs: {@code k}
 * {@code epoll_ctl(MOD)} calls and an {@code epoll_wait(0)} on plain epoll, against the same
 * {@code k} MODs as {@code IORING_OP_EPOLL_CTL} SQEs and one {@code IORING_OP_EPOLL_WAIT} in a
 * single {@code io_uring_enter}, with the wait bounded by the enter's timeout or by a linked
 * {@code LINK_TIMEOUT}. Nothing is ready (the MODs flip eventfds between {@code EPOLLIN} and
 * {@code EPOLLIN|EPOLLRDHUP}, both idle). {@code wait=poll}: nothing is ready and the wait
 * is a poll (timeout 0). {@code wait=ready}: one more level-triggered eventfd is always ready
 * and the wait has a 1 s timeout, so the round returns one event at once — which is where a
 * linked {@code LINK_TIMEOUT} (a timer armed and cancelled, a second CQE) and the enter's own
 * timeout differ. Run with {@code -prof gc}: target 0 B/op.
 */
@State(Scope.Thread)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--enable-native-access=ALL-UNNAMED", "--sun-misc-unsafe-memory-access=allow"})
public class EpollBatchBench {
    private static final int FDS = 64;
    private static final int MAX_EVENTS = 64;

    /** Pending changes flushed per iteration. */
    @Param({"0", "1", "8", "64"})
    public int k;

    /** {@code epoll}: epoll_ctl x k + epoll_wait(0); {@code enterArg}/{@code linkTimeout}: one enter. */
    @Param({"epoll", "enterArg", "linkTimeout"})
    public String backend;

    /** {@code poll}: nothing ready, timeout 0; {@code ready}: one event ready, timeout 1 s. */
    @Param({"poll", "ready"})
    public String wait;

    private Arena arena;
    private int readyFd = -1;
    private long timeoutNanos;
    private Syscalls sys;
    private int epfd;
    private final int[] fds = new int[FDS];
    private MemorySegment events;
    private EpollBatch batch;
    private boolean flip;

    @Setup
    public void setup() throws Exception {
        arena = Arena.ofConfined();
        sys = new Syscalls(arena);
        epfd = sys.epollCreate();
        events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * MAX_EVENTS, 8);
        for (int i = 0; i < FDS; i++) {
            fds[i] = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
            if (sys.epollCtl(epfd, Syscalls.EPOLL_CTL_ADD, fds[i], Syscalls.EPOLLIN, i) != 0) {
                throw new IllegalStateException("epoll_ctl ADD failed");
            }
        }
        if (wait.equals("ready")) {
            readyFd = sys.eventfd(1, Syscalls.EFD_NONBLOCK); // counter 1, never read: stays ready
            sys.epollCtl(epfd, Syscalls.EPOLL_CTL_ADD, readyFd, Syscalls.EPOLLIN, FDS);
            timeoutNanos = TimeUnit.SECONDS.toNanos(1);
        }
        if (!backend.equals("epoll")) {
            var mode = backend.equals("enterArg") ? EpollBatch.TimeoutMode.ENTER_ARG
                    : EpollBatch.TimeoutMode.LINK_TIMEOUT;
            batch = EpollBatch.open(epfd, events, MAX_EVENTS, arena,
                    EpollBatch.Options.defaults().withTimeoutMode(mode));
        }
    }

    @TearDown
    public void tearDown() {
        if (batch != null) {
            batch.close();
        }
        for (int fd : fds) {
            sys.close(fd);
        }
        if (readyFd >= 0) {
            sys.close(readyFd);
        }
        sys.close(epfd);
        arena.close();
    }

    @Benchmark
    public int flushAndWait() throws Exception {
        flip = !flip;
        int mask = flip ? Syscalls.EPOLLIN | Syscalls.EPOLLRDHUP : Syscalls.EPOLLIN;
        if (batch == null) {
            for (int i = 0; i < k; i++) {
                sys.epollCtl(epfd, Syscalls.EPOLL_CTL_MOD, fds[i], mask, i);
            }
            return timeoutNanos == 0 ? sys.epollWait(epfd, events, MAX_EVENTS, 0)
                    : sys.epollWaitNanos(epfd, events, MAX_EVENTS, timeoutNanos);
        }
        batch.clearResults();
        for (int i = 0; i < k; i++) {
            batch.queueCtl(Syscalls.EPOLL_CTL_MOD, fds[i], mask, i);
        }
        return batch.submitAndWait(timeoutNanos);
    }
}
