package io.quiesce.bench;

import io.micrometer.prometheusmetrics.PrometheusConfig;
import io.micrometer.prometheusmetrics.PrometheusMeterRegistry;
import io.quiesce.metrics.QuiesceMetrics;
import io.quiesce.net.Connection;
import io.quiesce.net.ConnectionHandler;
import io.quiesce.net.Server;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import org.openjdk.jmh.annotations.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.net.InetSocketAddress;
import java.util.concurrent.TimeUnit;

/**
 * Echo dispatch and the write path end to end on loopback: the benchmark thread sends 64 bytes over a blocking socket
 * and reads the echo; one reactor runs the echo handler (read, handler, send). The client side
 * allocates nothing (syscalls through a {@link Syscalls} table), so {@code -prof gc} shows the
 * reactor's allocation per message (target 0 B/op). {@code metrics=bound} binds
 * {@link QuiesceMetrics} to a Prometheus registry scraped every 100 ms: the ratio of the two
 * scores is the metrics overhead (target within noise, &le; 2 %).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.NANOSECONDS)
@Warmup(iterations = 3, time = 2)
@Measurement(iterations = 5, time = 2)
@Fork(value = 1, jvmArgsAppend = "--enable-native-access=ALL-UNNAMED")
public class EchoBench {
    private static final int SIZE = 64;

    @Param({"none", "bound"})
    public String metrics;

    /**
     * The write path: {@code 1}, the echo is one {@code write} (sent with {@code send});
     * {@code 4}, the handler writes the 64 bytes as four 16-byte pieces, which the connection
     * gathers into one {@code sendmsg}.
     */
    @Param({"1", "4"})
    public int writes;

    private ReactorGroup group;
    private Server server;
    private PrometheusMeterRegistry registry;
    private Thread scraper;
    private Arena arena;
    private Syscalls sys;
    private TestSyscalls tsys;
    private MemorySegment out;
    private MemorySegment in;
    private int fd = -1;

    @Setup(Level.Trial)
    public void setup() throws Exception {
        group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(1));
        server = Server.bind(group, new InetSocketAddress("127.0.0.1", 0), () -> new ConnectionHandler() {
            // The pieces are slices of the read buffer, cut once per distinct read segment, so
            // that the benchmark's own handler allocates nothing per message.
            private MemorySegment sliced;
            private MemorySegment[] pieces;

            @Override
            public void onRead(Connection c, MemorySegment data) {
                if (writes == 1) {
                    c.write(data);
                    return;
                }
                if (data != sliced) {
                    long piece = Math.max(1, data.byteSize() / writes);
                    var list = new java.util.ArrayList<MemorySegment>();
                    for (long off = 0; off < data.byteSize(); off += piece) {
                        list.add(data.asSlice(off, Math.min(piece, data.byteSize() - off)));
                    }
                    pieces = list.toArray(MemorySegment[]::new);
                    sliced = data;
                }
                for (MemorySegment p : pieces) {
                    c.write(p);
                }
            }
        });
        if (metrics.equals("bound")) {
            registry = new PrometheusMeterRegistry(PrometheusConfig.DEFAULT);
            QuiesceMetrics.bind(group, registry);
            scraper = Thread.ofPlatform().daemon().start(() -> {
                while (!Thread.currentThread().isInterrupted()) {
                    registry.scrape();
                    try {
                        Thread.sleep(100);
                    } catch (InterruptedException e) {
                        return;
                    }
                }
            });
        }
        arena = Arena.ofShared();
        sys = new Syscalls(arena);
        tsys = new TestSyscalls(arena);
        out = arena.allocate(SIZE);
        in = arena.allocate(SIZE);
        out.fill((byte) 'q');
        fd = Errno.checkSocket(sys.socket(Syscalls.AF_INET, Syscalls.SOCK_STREAM, 0), "socket", -1);
        Errno.checkSocket(sys.setsockopt(fd, Syscalls.IPPROTO_TCP, Syscalls.TCP_NODELAY, 1), "setsockopt", fd);
        MemorySegment addr = arena.allocate(SockAddr.MAX_SIZE);
        int len = SockAddr.encode(new InetSocketAddress("127.0.0.1", server.port()), addr);
        Errno.checkSocket(sys.connect(fd, addr, len), "connect", fd);
    }

    @TearDown(Level.Trial)
    public void tearDown() throws Exception {
        sys.close(fd);
        if (scraper != null) {
            scraper.interrupt();
            scraper.join();
            registry.close();
        }
        server.close();
        group.close();
        arena.close();
    }

    @Benchmark
    public long pingPong() {
        if (sys.send(fd, out, SIZE, Syscalls.MSG_NOSIGNAL) != SIZE) {
            throw new IllegalStateException("short send");
        }
        long got = 0;
        while (got < SIZE) {
            long n = tsys.recv(fd, in.asSlice(got), SIZE - got, 0);
            if (n <= 0) {
                throw new IllegalStateException("recv: " + n);
            }
            got += n;
        }
        return got;
    }
}
