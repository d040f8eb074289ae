package io.quiesce.bench;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * The {@link WakeBench} ping-pong for both wakes (eventfd, {@code MSG_RING}) in one process on
 * one pair of threads, alternating rally by rally (the order flipped every block), so that the
 * load other processes put on a shared machine weighs on both alike. Prints, per wake, the median
 * and quartiles of the per-rally latency and CPU time per round trip, and the median of the
 * per-block ratios {@code MSG_RING / eventfd}.
 *
 * <p>{@code java --enable-native-access=ALL-UNNAMED -cp ... io.quiesce.bench.WakeInterleaved
 * none|same|split [blocks]}
 */
public final class WakeInterleaved {
    private static final int ROUND_TRIPS = 1000;
    private static final int WARMUP_BLOCKS = 20;

    private WakeInterleaved() {}

    public static void main(String[] args) throws Exception {
        String pin = args.length > 0 ? args[0] : "none";
        int blocks = args.length > 1 ? Integer.parseInt(args[1]) : 200;
        List<List<Double>> nanos = List.of(new ArrayList<>(), new ArrayList<>());
        List<List<Double>> cpu = List.of(new ArrayList<>(), new ArrayList<>());
        List<Double> latencyRatio = new ArrayList<>();
        List<Double> cpuRatio = new ArrayList<>();
        try (var pair = pin.equals("none") ? new WakePair(-1, -1) : new WakePair(0, pin.equals("same") ? 0 : 1)) {
            for (int block = 0; block < blocks; block++) {
                double[] t = new double[2];
                double[] c = new double[2];
                for (int j = 0; j < 2; j++) {
                    int v = (j + block) % 2;
                    pair.msgRing = v == 1;
                    long c0 = pair.cpuNanos();
                    long t0 = System.nanoTime();
                    pair.rally(ROUND_TRIPS);
                    t[v] = (double) (System.nanoTime() - t0) / ROUND_TRIPS;
                    c[v] = (double) (pair.cpuNanos() - c0) / ROUND_TRIPS;
                }
                if (block >= WARMUP_BLOCKS) {
                    for (int v = 0; v < 2; v++) {
                        nanos.get(v).add(t[v]);
                        cpu.get(v).add(c[v]);
                    }
                    latencyRatio.add(t[1] / t[0]);
                    cpuRatio.add(c[1] / c[0]);
                }
            }
        }
        String[] names = {"eventfd", "msgring"};
        for (int v = 0; v < 2; v++) {
            System.out.printf("pin=%s %-8s ns/round trip %s   CPU ns/round trip %s%n", pin, names[v],
                    quartiles(nanos.get(v)), quartiles(cpu.get(v)));
        }
        System.out.printf("pin=%s msgring/eventfd per block: latency %s   CPU %s%n", pin,
                quartiles(latencyRatio), quartiles(cpuRatio));
    }

    /** {@return "median [q1, q3]"} */
    private static String quartiles(List<Double> xs) {
        List<Double> s = new ArrayList<>(xs);
        Collections.sort(s);
        int n = s.size();
        String f = s.getFirst() < 10 ? "%.3f" : "%.0f";
        return String.format(f + " [" + f + ", " + f + "]", s.get(n / 2), s.get(n / 4), s.get(3 * n / 4));
    }
}
