package io.quiesce.net;

import java.lang.foreign.MemorySegment;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.SplittableRandom;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;

/**
 * One Quiesce end of a {@link NetSchedule} link: the handler of an accepted connection or of a
 * {@code Client.connect}. It checks its own callbacks (on its reactor thread, one at a time,
 * {@code onOpen} first, nothing after {@code onClose} or after the close future, {@code onClose}
 * once, the fd released and no io_uring op in flight by then), parses what it receives
 * ({@link Frames.Parser}) and, on its reactor thread, makes random choices of its own: replies,
 * pauses with a timed resume, a thrown exception, a close, a half-close or an abort.
 */
final class NetEnd implements NetSchedule.End, ConnectionHandler {
    /** What a handler throws on purpose; it must come back as the connection's close cause. */
    static final class PlannedFailure extends RuntimeException {
        PlannedFailure() {
            super("thrown by the schedule's handler on purpose", null, false, false);
        }
    }

    private final NetSchedule s;
    final boolean server;
    private final Frames.Parser parser;
    /** Reactor thread only: the handler's own choices. */
    private final SplittableRandom rnd;
    /** The link: given to a client; learnt by an accepted end from its first frame. */
    volatile NetSchedule.Link link;
    volatile Connection c;
    /** Guarded by this: the sequence number of the next frame sent. */
    private long seq;
    private volatile long framesSent;

    final AtomicInteger opens = new AtomicInteger();
    final AtomicInteger closes = new AtomicInteger();
    private volatile boolean closed;
    volatile boolean futureDone;
    volatile Throwable cause;
    private volatile boolean abortAsked;
    volatile boolean plannedThrow;
    private volatile boolean sawEof;
    /** Reactor thread only. */
    private boolean inCallback;
    private int fd = -1;
    private String fdIdentity;
    volatile int remotePort;
    volatile int localPort;

    NetEnd(NetSchedule s, boolean server, NetSchedule.Link link, long seed) {
        this.s = s;
        this.server = server;
        this.link = link;
        this.parser = new Frames.Parser(server ? Frames.TO_SERVER : Frames.TO_CLIENT, link == null ? -1 : link.id);
        this.rnd = new SplittableRandom(seed);
    }

    // ------------------------------------------------------------------ the callbacks

    private boolean enter(String callback) {
        Connection conn = c;
        if (conn != null && !conn.reactor().inReactorThread()) {
            s.failure(this + ": " + callback + " on thread " + Thread.currentThread().getName());
        }
        if (inCallback) {
            s.failure(this + ": " + callback + " re-entered another callback");
        }
        if (closed || futureDone) {
            s.callbacksAfterClose.increment();
            s.failure(this + ": " + callback + " after " + (closed ? "onClose" : "the close future"));
            return false;
        }
        if (opens.get() != 1) {
            s.failure(this + ": " + callback + " with " + opens.get() + " onOpen calls before it");
        }
        inCallback = true;
        return true;
    }

    private void leave() {
        inCallback = false;
    }

    @Override
    public void onOpen(Connection conn) {
        c = conn;
        opens.incrementAndGet();
        if (!enter("onOpen")) {
            return;
        }
        try {
            fd = ((TcpConnection) conn).fd;
            fdIdentity = identity(fd);
            remotePort = conn.remoteAddress().getPort();
            localPort = conn.localAddress().getPort();
            conn.closeFuture().whenComplete((v, e) -> futureDone = true);
            s.opened(this);
            if (!server) {
                link.clientPort = localPort;
                writeFrames(1, 16, rnd); // the hello: an accepted end learns its link from it
            }
            if (rnd.nextInt(4) == 0) {
                writeFrames(1 + rnd.nextInt(4), 512, rnd);
            }
        } finally {
            leave();
        }
    }

    @Override
    public void onRead(Connection conn, MemorySegment data) {
        if (!enter("onRead")) {
            return;
        }
        try {
            long before = parser.frames();
            parser.accept(data);
            s.framesReceived.add(parser.frames() - before);
            if (parser.error() != null) {
                s.streamError(this, parser.error());
                abort();
                return;
            }
            if (link == null && parser.link() >= 0) {
                bind(parser.link());
            }
            if (link == null) {
                return; // the hello is not whole yet
            }
            reactorChoices(conn);
        } finally {
            leave();
        }
    }

    /** An accepted end's first frame names its link: the link's client must be this connection's peer. */
    private void bind(long id) {
        NetSchedule.Link l = s.link(id);
        if (l == null || l.clientPort != remotePort) {
            s.streamError(this, "the hello of link " + id + (l == null ? " (unknown)" : " (client port " + l.clientPort + ")")
                    + " arrived on a connection from port " + remotePort);
            abort();
            return;
        }
        l.server = this;
        link = l;
    }

    private void reactorChoices(Connection conn) {
        int roll = rnd.nextInt(1000);
        if (roll < 120) {
            writeFrames(1 + rnd.nextInt(8), 300, rnd);
        } else if (roll < 135) {
            if (conn.isWritable()) {
                writeFrames(1, 16 * 1024 + rnd.nextInt(240 * 1024), rnd);
            }
        } else if (roll < 160) {
            pause(1 + rnd.nextInt(20));
        } else if (roll < 162) {
            plannedThrow = true;
            s.handlerThrows.increment();
            throw new PlannedFailure();
        } else if (roll < 164) {
            close();
        } else if (roll < 166) {
            shutdownOutput();
        } else if (roll < 167) {
            abort();
        }
    }

    @Override
    public void onWritable(Connection conn) {
        if (!enter("onWritable")) {
            return;
        }
        try {
            if (link != null && rnd.nextInt(4) == 0) {
                writeFrames(1 + rnd.nextInt(4), 300, rnd);
            }
        } finally {
            leave();
        }
    }

    @Override
    public void onPeerClosed(Connection conn) {
        if (!enter("onPeerClosed")) {
            return;
        }
        try {
            sawEof = true;
            if (link != null) {
                writeFrames(rnd.nextInt(4), 300, rnd);
            }
            if (rnd.nextInt(3) == 0) {
                conn.shutdownOutput(); // both directions ended once the FIN is out: closes by itself
            } else {
                conn.close();
            }
        } finally {
            leave();
        }
    }

    @Override
    public void onClose(Connection conn, Throwable why) {
        boolean ok = enter("onClose");
        try {
            if (closes.incrementAndGet() != 1) {
                s.doubleCloses.increment();
                s.failure(this + ": onClose #" + closes.get());
            }
            closed = true;
            cause = why;
            if (why instanceof SocketTimeoutException) {
                s.timeouts.increment();
            }
            if (plannedThrow && why == null) {
                s.failure(this + ": a handler threw, yet onClose has no cause");
            }
            if (conn.closeFuture().isDone()) {
                s.failure(this + ": the close future completed before onClose");
            }
            if (fdIdentity != null && fdIdentity.equals(identity(fd))) {
                s.leakedFds.increment();
                s.failure(this + ": onClose, yet fd " + fd + " still names " + fdIdentity);
            }
            UringStream u = ((TcpConnection) conn).uring;
            if (u != null && u.opsInFlight() != 0) {
                s.opsInFlightAtClose.increment();
                s.failure(this + ": onClose with " + u.opsInFlight() + " io_uring ops in flight");
            }
        } finally {
            if (ok) {
                leave();
            }
        }
    }

    private static String identity(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (java.io.IOException e) {
            return null;
        }
    }

    // ------------------------------------------------------------------ what anyone may do (NetSchedule.End)

    /** Writes {@code n} frames of up to {@code maxLength} payload bytes; stops at the first refusal. Any thread. */
    @Override
    public void writeFrames(int n, int maxLength, RandomGenerator rnd) {
        NetSchedule.Link l = link;
        Connection conn = c;
        if (l == null || conn == null) {
            return;
        }
        int dir = server ? Frames.TO_CLIENT : Frames.TO_SERVER;
        // One frame after another under this lock: the order of the stream is the order of seq,
        // whichever threads write (writes from one thread keep their order; a reactor-thread
        // write sends what other threads queued first).
        synchronized (this) {
            for (int i = 0; i < n; i++) {
                int len = maxLength <= 0 ? 0 : rnd.nextInt(maxLength + 1);
                if (!conn.write(Frames.frame(dir, l.id, seq, len))) {
                    return;
                }
                framesSent = ++seq;
            }
        }
    }

    @Override
    public boolean writable() {
        Connection conn = c;
        return conn != null && conn.isWritable();
    }

    /** Pauses reading and schedules the resume {@code millis} later on the reactor. */
    @Override
    public void pause(int millis) {
        Connection conn = c;
        if (conn == null) {
            return;
        }
        conn.pauseReading();
        try {
            conn.reactor().schedule(millis, TimeUnit.MILLISECONDS, conn::resumeReading);
        } catch (RejectedExecutionException shutDown) {
            // the group is closing: so is the connection
        }
    }

    @Override
    public void resume() {
        Connection conn = c;
        if (conn != null) {
            conn.resumeReading();
        }
    }

    @Override
    public void shutdownOutput() {
        Connection conn = c;
        if (conn != null) {
            conn.shutdownOutput();
        }
    }

    @Override
    public void close() {
        Connection conn = c;
        if (conn != null) {
            conn.close();
        }
    }

    @Override
    public void abort() {
        Connection conn = c;
        if (conn != null) {
            abortAsked = true;
            conn.abort();
        }
    }

    // ------------------------------------------------------------------ what the round checks

    @Override
    public long framesSent() {
        return framesSent;
    }

    /** Closed with no cause and never aborted: every frame whose write answered true was sent. */
    @Override
    public boolean sentEverything() {
        return closed && cause == null && !abortAsked;
    }

    @Override
    public boolean sawEof() {
        return sawEof && closed && cause == null && !abortAsked; // a send that met a reset would have failed it
    }

    @Override
    public Frames.Parser parser() {
        return parser;
    }

    @Override
    public boolean finished() {
        Connection conn = c;
        return conn == null || conn.closeFuture().isDone();
    }

    @Override
    public String toString() {
        NetSchedule.Link l = link;
        return (server ? "accepted" : "client") + "[link " + (l == null ? "?" : l.id) + ", fd " + fd + ", port "
                + (server ? remotePort : localPort) + ", sent " + framesSent + ", received " + parser.frames()
                + (sawEof ? ", eof" : "") + (closed ? ", closed cause=" + cause : "") + (abortAsked ? ", aborted" : "")
                + (c == null ? "" : ", " + c) + "]";
    }
}
