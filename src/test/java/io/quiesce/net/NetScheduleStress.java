package io.quiesce.net;

import io.quiesce.reactor.ReactorGroup;

import java.util.Locale;
import java.util.concurrent.TimeUnit;

/**
 * {@code make stress}, its network part: the seeded network random schedule ({@link NetSchedule})
 * round after round on each backend named, outside the unit suite. Arguments: seconds per backend
 * (default 10; 0 runs one round), the seed (default: a fresh one; round {@code i} of a backend
 * uses {@code seed + i}), and the backends (default {@code epoll,batch,uring}). Prints one line
 * per backend, {@code io=B connections=N ... seed=S}, and exits non-zero after printing on stderr
 * what failed and the seed of the round to replay.
 */
public final class NetScheduleStress {
    public static void main(String[] args) throws Exception {
        long seconds = args.length > 0 && !args[0].isEmpty() ? Long.parseLong(args[0]) : 10;
        long seed = args.length > 1 && !args[1].isEmpty() ? Long.parseLong(args[1]) : System.nanoTime() ^ 0x5DEE_CE66_DL;
        String ios = args.length > 2 && !args[2].isEmpty() ? args[2] : "epoll,batch,uring";
        WarmJdkSockets.warm(); // the JDK's one lifelong socket fd, opened before the first round's snapshot
        int workers = Math.max(4, Runtime.getRuntime().availableProcessors() * 2);
        boolean clean = true;
        for (String name : ios.split("[, ]+")) {
            ReactorGroup.Io io = ReactorGroup.Io.valueOf(name.toUpperCase(Locale.ROOT));
            var total = NetSchedule.Result.empty();
            long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
            long rounds = 0;
            while (rounds == 0 || System.nanoTime() - until < 0) {
                long roundSeed = seed + rounds++;
                var r = NetSchedule.run(new NetSchedule.Config(roundSeed, io, workers, 2_000, 48, 3_000));
                total = total.plus(r);
                if (!r.clean()) {
                    clean = false;
                    System.err.println("network schedule round " + rounds + " on " + name + " failed, seed=" + roundSeed
                            + " (replay: make stress CLOSES=0 STRESS_SECS=0 NET_SECS=0 NET_IO=" + name + " STRESS_SEED="
                            + roundSeed + "): " + r.line() + "\n  " + String.join("\n  ", r.failures()));
                    break;
                }
            }
            System.out.println("io=" + name + " rounds=" + rounds + " " + total.line() + " seed=" + seed);
        }
        System.exit(clean ? 0 : 1);
    }
}
