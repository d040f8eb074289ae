package io.quiesce.bench;

/**
 * Command line of every peer server: {@code --port P --threads N [--reuseport]
 * [--transport epoll|io_uring]}. The servers listen on 127.0.0.1 only; the last two are
 * Netty's (the NIO peers refuse {@code --transport io_uring}).
 */
public record Args(int port, int threads, boolean reusePort, Transport transport) {

    /** Netty's native transport: {@code epoll} (the default) or {@code io_uring}. */
    public enum Transport {
        EPOLL("epoll"), IO_URING("io_uring");

        private final String label;

        Transport(String label) {
            this.label = label;
        }

        /** {@return the name on the command line and in the ready line} */
        public String label() {
            return label;
        }
    }

    public static Args parse(String server, int defaultPort, String[] argv) {
        int port = defaultPort;
        int threads = 2;
        boolean reusePort = false;
        Transport transport = Transport.EPOLL;
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--port" -> port = intArg(server, argv, ++i);
                case "--threads" -> threads = intArg(server, argv, ++i);
                case "--reuseport" -> reusePort = true;
                case "--transport" -> {
                    if (++i >= argv.length) usage(server, defaultPort, "--transport needs a value");
                    transport = switch (argv[i]) {
                        case "epoll" -> Transport.EPOLL;
                        case "io_uring", "uring" -> Transport.IO_URING;
                        default -> {
                            usage(server, defaultPort, "--transport takes epoll or io_uring: " + argv[i]);
                            yield null;
                        }
                    };
                }
                case "-h", "--help" -> usage(server, defaultPort, null);
                default -> usage(server, defaultPort, "unknown argument " + argv[i]);
            }
        }
        if (port < 0 || port > 65535) usage(server, defaultPort, "--port must be 0..65535");
        if (threads < 1 || threads > 256) usage(server, defaultPort, "--threads must be 1..256");
        return new Args(port, threads, reusePort, transport);
    }

    private static int intArg(String server, String[] argv, int i) {
        if (i >= argv.length) usage(server, 0, argv[i - 1] + " needs a value");
        try {
            return Integer.parseInt(argv[i]);
        } catch (NumberFormatException e) {
            usage(server, 0, "not a number: " + argv[i]);
            return 0;
        }
    }

    private static void usage(String server, int defaultPort, String problem) {
        if (problem != null) System.err.println(server + ": " + problem);
        System.err.println("usage: " + server + " [--port P] [--threads N] [--reuseport] [--transport epoll|io_uring]");
        System.err.println("  --port P      port on 127.0.0.1 (default " + defaultPort + ", 0 = any free port)");
        System.err.println("  --threads N   event-loop / selector threads (default 2)");
        System.err.println("  --reuseport   Netty only: one SO_REUSEPORT listener per thread");
        System.err.println("  --transport T Netty only: native epoll (default) or io_uring");
        System.exit(problem == null ? 0 : 2);
    }

    /** The line the benchmark runner waits for. */
    public static void ready(int port, int threads) {
        System.out.println("listening on 127.0.0.1:" + port + " (" + threads + " threads)");
        System.out.flush();
    }

    /** The ready line of a server that names its transport: {@code (N threads, io_uring)}. */
    public static void ready(int port, int threads, Transport transport) {
        System.out.println("listening on 127.0.0.1:" + port + " (" + threads + " threads, " + transport.label() + ")");
        System.out.flush();
    }
}
