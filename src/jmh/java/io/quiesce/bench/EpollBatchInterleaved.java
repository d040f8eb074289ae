package io.quiesce.bench;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.EpollBatch;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The {@link EpollBatchBench} round (flush {@code k} MODs + wait) for the three backends in one
 * process, alternating in blocks of 2000 rounds, so that a machine whose load drifts (a shared
 * builder) weighs on all three alike; prints the median and quartiles of the per-block means.
 * JMH gives the absolute figures on a quiet machine; this gives the ratios on a noisy one.
 *
 * <p>{@code java --enable-native-access=ALL-UNNAMED -cp ... io.quiesce.bench.EpollBatchInterleaved k poll|ready}
 */
public final class EpollBatchInterleaved {
    private static final int FDS = 64;
    private static final int ROUNDS_PER_BLOCK = 2000;
    private static final int BLOCKS = 60;
    private static final int WARMUP_BLOCKS = 10;

    private EpollBatchInterleaved() {}

    public static void main(String[] args) throws Exception {
        int k = Integer.parseInt(args[0]);
        boolean ready = args[1].equals("ready");
        long timeoutNanos = ready ? 1_000_000_000L : 0;
        try (var arena = Arena.ofConfined()) {
            var sys = new Syscalls(arena);
            MemorySegment events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * FDS, 8);
            int[] ep = new int[3];
            int[][] fds = new int[3][FDS];
            for (int s = 0; s < 3; s++) {
                ep[s] = sys.epollCreate();
                for (int i = 0; i < FDS; i++) {
                    fds[s][i] = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
                    sys.epollCtl(ep[s], Syscalls.EPOLL_CTL_ADD, fds[s][i], Syscalls.EPOLLIN, i);
                }
                if (ready) { // a level-triggered eventfd with a count, never read: always ready
                    sys.epollCtl(ep[s], Syscalls.EPOLL_CTL_ADD, sys.eventfd(1, Syscalls.EFD_NONBLOCK),
                            Syscalls.EPOLLIN, FDS);
                }
            }
            var batches = new EpollBatch[] {null,
                    EpollBatch.open(ep[1], events, FDS, arena, EpollBatch.Options.defaults()),
                    EpollBatch.open(ep[2], events, FDS, arena, EpollBatch.Options.defaults()
                            .withTimeoutMode(EpollBatch.TimeoutMode.LINK_TIMEOUT))};
            String[] names = {"epoll", "enterArg", "linkTimeout"};
            List<List<Double>> means = List.of(new ArrayList<>(), new ArrayList<>(), new ArrayList<>());
            int n = 0;
            for (int block = 0; block < BLOCKS; block++) {
                for (int j = 0; j < 3; j++) {
                    int s = (j + block) % 3;
                    long t0 = System.nanoTime();
                    for (int r = 0; r < ROUNDS_PER_BLOCK; r++, n++) {
                        int mask = (n & 1) == 0 ? Syscalls.EPOLLIN | Syscalls.EPOLLRDHUP : Syscalls.EPOLLIN;
                        if (s == 0) {
                            for (int i = 0; i < k; i++) {
                                sys.epollCtl(ep[0], Syscalls.EPOLL_CTL_MOD, fds[0][i], mask, i);
                            }
                            if (timeoutNanos == 0) {
                                sys.epollWait(ep[0], events, FDS, 0);
                            } else {
                                sys.epollWaitNanos(ep[0], events, FDS, timeoutNanos);
                            }
                        } else {
                            batches[s].clearResults();
                            for (int i = 0; i < k; i++) {
                                batches[s].queueCtl(Syscalls.EPOLL_CTL_MOD, fds[s][i], mask, i);
                            }
                            batches[s].submitAndWait(timeoutNanos);
                        }
                    }
                    if (block >= WARMUP_BLOCKS) {
                        means.get(s).add((double) (System.nanoTime() - t0) / ROUNDS_PER_BLOCK);
                    }
                }
            }
            var out = new StringBuilder("k=" + k + " " + args[1] + ":");
            for (int s = 0; s < 3; s++) {
                var l = new ArrayList<>(means.get(s));
                Collections.sort(l);
                out.append(String.format("  %s %.0f ns (p25 %.0f, p75 %.0f)", names[s],
                        l.get(l.size() / 2), l.get(l.size() / 4), l.get(3 * l.size() / 4)));
            }
            System.out.println(out);
            batches[1].close();
            batches[2].close();
        }
    }
}
