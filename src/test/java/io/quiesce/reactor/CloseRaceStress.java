package io.quiesce.reactor;

import io.quiesce.sys.raw.TestSyscalls;
import java.util.concurrent.TimeUnit;

/**
 * {@code make stress}: the close-race torture, then the seeded random schedule
 * ({@link RandomSchedule}) round after round, outside the unit suite. Arguments: handles the
 * torture closes (default 100,000), seconds of random schedule (default 30), and the seed (default:
 * a fresh one; round {@code i} uses {@code seed + i}). Prints one line
 * {@code closes=N stale_events=N wrong_handle=N double_closes=N leaked_fds=N callbacks_after_close=N stuck_closes=N seed=S}
 * and exits non-zero if any count but {@code closes} is above 0, after printing on stderr what
 * failed and the seed of the round to replay.
 */
public final class CloseRaceStress {
    public static void main(String[] args) throws Exception {
        long closes = args.length > 0 && !args[0].isEmpty() ? Long.parseLong(args[0]) : 100_000;
        long seconds = args.length > 1 && !args[1].isEmpty() ? Long.parseLong(args[1]) : 30;
        long seed = args.length > 2 && !args[2].isEmpty() ? Long.parseLong(args[2]) : System.nanoTime() ^ 0x5DEE_CE66_DL;
        int cpus = Runtime.getRuntime().availableProcessors();
        long[] limit = new long[2];
        if (TestSyscalls.current().fileLimit(limit) == 0) { // room for the fds in flight
            TestSyscalls.current().setFileLimit(Math.min(limit[1], 65_536), limit[1]);
        }
        var torture = closes > 0
                ? CloseRaceTorture.run(closes, 64, Math.max(2, cpus * 2), Math.max(2, cpus), Math.max(2, cpus))
                : null;
        var schedule = RandomSchedule.Result.empty();
        long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(seconds);
        long rounds = 0;
        while (rounds == 0 || System.nanoTime() - until < 0) {
            long roundSeed = seed + rounds++;
            long leftMillis = Math.max(1_000, TimeUnit.NANOSECONDS.toMillis(until - System.nanoTime()));
            var r = RandomSchedule.run(new RandomSchedule.Config(roundSeed, Math.max(4, cpus * 2), 6_000, 64,
                    Math.min(10_000, leftMillis)));
            schedule = schedule.plus(r);
            if (!r.clean()) {
                System.err.println("random schedule round " + rounds + " failed, seed=" + roundSeed + " (replay: make stress CLOSES=0 STRESS_SECS=0 STRESS_SEED="
                        + roundSeed + "): " + r.line() + "\n  " + String.join("\n  ", r.failures()));
                break;
            }
        }
        long allCloses = schedule.closes() + (torture == null ? 0 : torture.closes());
        System.out.println("closes=" + allCloses
                + " stale_events=" + (schedule.staleEvents() + (torture == null ? 0 : torture.staleEvents()))
                + " wrong_handle=" + (schedule.wrongHandle() + (torture == null ? 0 : torture.wrongHandle()))
                + " double_closes=" + (schedule.doubleCloses() + (torture == null ? 0 : torture.doubleCloses()))
                + " leaked_fds=" + (schedule.leakedFds() + (torture == null ? 0 : torture.leakedFds()))
                + " callbacks_after_close=" + (schedule.callbacksAfterClose() + (torture == null ? 0 : torture.callbacksAfterClose()))
                + " stuck_closes=" + schedule.stuckCloses()
                + " seed=" + seed);
        boolean clean = schedule.clean() && (torture == null || torture.clean());
        if (torture != null && !torture.clean()) {
            System.err.println("torture: " + torture.line());
        }
        System.exit(clean ? 0 : 1);
    }
}
