package io.quiesce.reactor;

/**
 * {@code make stress}: the close-race torture outside the unit suite. Argument: how many handles
 * to close (default 100,000). Prints one line
 * {@code closes=N stale_events=N wrong_handle=N double_closes=N leaked_fds=N callbacks_after_close=N}
 * and exits non-zero if any count but {@code closes} is above 0.
 */
public final class CloseRaceStress {
    public static void main(String[] args) throws Exception {
        long closes = args.length > 0 ? Long.parseLong(args[0]) : 100_000;
        int cpus = Runtime.getRuntime().availableProcessors();
        long[] limit = new long[2];
        if (io.quiesce.sys.Syscalls.current().fileLimit(limit) == 0) { // room for the fds in flight
            io.quiesce.sys.Syscalls.current().setFileLimit(Math.min(limit[1], 65_536), limit[1]);
        }
        var r = CloseRaceTorture.run(closes, 64, Math.max(2, cpus * 2), Math.max(2, cpus), Math.max(2, cpus));
        System.out.println(r.line());
        System.exit(r.clean() ? 0 : 1);
    }
}
