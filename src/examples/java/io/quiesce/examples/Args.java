package io.quiesce.examples;

import io.quiesce.reactor.ReactorGroup;

import java.util.Locale;

/**
 * The examples' command line: {@code --port P --threads N --io epoll|batch|uring} (and
 * {@code --key value} in general).
 */
record Args(int port, int threads, ReactorGroup.Io io) {
    static Args parse(String[] args, int defaultPort) {
        int port = defaultPort;
        int threads = Runtime.getRuntime().availableProcessors();
        ReactorGroup.Io io = ReactorGroup.Io.fromSystemProperty();
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            if (i + 1 >= args.length) {
                throw usage("missing value after " + a);
            }
            String v = args[++i];
            switch (a) {
                case "--port" -> port = number(a, v, 0, 65535);
                case "--threads" -> threads = number(a, v, 1, 1024);
                case "--io" -> io = switch (v.toLowerCase(Locale.ROOT)) {
                    case "epoll" -> ReactorGroup.Io.EPOLL;
                    case "batch" -> ReactorGroup.Io.BATCH;
                    case "uring" -> ReactorGroup.Io.URING;
                    default -> throw usage("--io takes epoll, batch or uring: " + v);
                };
                default -> throw usage("unknown option " + a);
            }
        }
        return new Args(port, threads, io);
    }

    private static int number(String option, String v, int min, int max) {
        try {
            int n = Integer.parseInt(v.trim());
            if (n < min || n > max) {
                throw usage(option + " must be in [" + min + ", " + max + "]: " + v);
            }
            return n;
        } catch (NumberFormatException e) {
            throw usage(option + " needs a number: " + v);
        }
    }

    private static IllegalArgumentException usage(String why) {
        return new IllegalArgumentException(why + " (usage: --port P --threads N --io epoll|batch|uring)");
    }
}
