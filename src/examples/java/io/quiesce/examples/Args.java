package io.quiesce.examples;

import io.quiesce.reactor.ReactorGroup;

import java.util.Locale;

/**
 * The examples' command line: {@code --port P --threads N --io epoll|batch|uring
 * --uring-buffers COUNTxSIZE} (and {@code --key value} in general). {@code --uring-buffers} sizes
 * each reactor's provided receive buffers on the io_uring transport (default {@code 512x16384};
 * see {@link ReactorGroup.Options#withUringBuffers}).
 */
record Args(int port, int threads, ReactorGroup.Io io, int uringBuffers, int uringBufferSize) {
    /** {@return the group options these arguments ask for} */
    ReactorGroup.Options groupOptions(String threadNamePrefix) {
        return ReactorGroup.Options.defaults().withThreads(threads).withThreadNamePrefix(threadNamePrefix).withIo(io)
                .withUringBuffers(uringBuffers, uringBufferSize);
    }

    static Args parse(String[] args, int defaultPort) {
        int port = defaultPort;
        int threads = Runtime.getRuntime().availableProcessors();
        ReactorGroup.Io io = ReactorGroup.Io.fromSystemProperty();
        var defaults = ReactorGroup.Options.defaults();
        int buffers = defaults.uringBuffers();
        int bufferSize = defaults.uringBufferSize();
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
                case "--uring-buffers" -> {
                    int x = v.indexOf('x');
                    if (x < 0) {
                        throw usage("--uring-buffers takes COUNTxSIZE, e.g. 512x16384: " + v);
                    }
                    buffers = number(a, v.substring(0, x), 1, ReactorGroup.Options.MAX_URING_BUFFERS);
                    bufferSize = number(a, v.substring(x + 1), ReactorGroup.Options.MIN_URING_BUFFER_SIZE,
                            ReactorGroup.Options.MAX_URING_BUFFER_SIZE);
                }
                default -> throw usage("unknown option " + a);
            }
        }
        try {
            defaults.withUringBuffers(buffers, bufferSize);
        } catch (IllegalArgumentException e) {
            throw usage("--uring-buffers: " + e.getMessage());
        }
        return new Args(port, threads, io, buffers, bufferSize);
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
        return new IllegalArgumentException(why + " (usage: --port P --threads N --io epoll|batch|uring --uring-buffers COUNTxSIZE)");
    }
}
