package io.quiesce.bench;

/**
 * Command line of every peer server: {@code --port P --threads N [--reuseport]}.
 * The servers listen on 127.0.0.1 only.
 */
public record Args(int port, int threads, boolean reusePort) {

    public static Args parse(String server, int defaultPort, String[] argv) {
        int port = defaultPort;
        int threads = 2;
        boolean reusePort = false;
        for (int i = 0; i < argv.length; i++) {
            switch (argv[i]) {
                case "--port" -> port = intArg(server, argv, ++i);
                case "--threads" -> threads = intArg(server, argv, ++i);
                case "--reuseport" -> reusePort = true;
                case "-h", "--help" -> usage(server, defaultPort, null);
                default -> usage(server, defaultPort, "unknown argument " + argv[i]);
            }
        }
        if (port < 0 || port > 65535) usage(server, defaultPort, "--port must be 0..65535");
        if (threads < 1 || threads > 256) usage(server, defaultPort, "--threads must be 1..256");
        return new Args(port, threads, reusePort);
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
        System.err.println("usage: " + server + " [--port P] [--threads N] [--reuseport]");
        System.err.println("  --port P      port on 127.0.0.1 (default " + defaultPort + ", 0 = any free port)");
        System.err.println("  --threads N   event-loop / selector threads (default 2)");
        System.err.println("  --reuseport   Netty only: one SO_REUSEPORT listener per thread");
        System.exit(problem == null ? 0 : 2);
    }

    /** The line the benchmark runner waits for. */
    public static void ready(int port, int threads) {
        System.out.println("listening on 127.0.0.1:" + port + " (" + threads + " threads)");
        System.out.flush();
    }
}
