package io.quiesce.net;

import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;
import java.util.random.RandomGenerator;

/**
 * A plain JDK socket as the client end of a {@link NetSchedule} link: a reader thread parses what
 * the accepted end sends (pausing when told, which fills the server's socket buffer), and a writer
 * thread carries out the commands other threads queue, in order: frames, half-close, close, and
 * reset ({@code SO_LINGER} 0). Blocking writes stay on the writer thread, so a server that does
 * not read stalls this link only. When the reader meets end of stream the peer closes.
 */
final class JdkPeer implements NetSchedule.End {
    private sealed interface Command {}
    /** Frames with these payload lengths; numbered by the writer thread, in order. */
    private record Write(int[] lengths) implements Command {}
    private enum Simple implements Command { SHUTDOWN_OUTPUT, CLOSE, RESET }

    private final NetSchedule s;
    final NetSchedule.Link link;
    private final Socket socket;
    private final Frames.Parser parser;
    private final LinkedBlockingQueue<Command> commands = new LinkedBlockingQueue<>();
    private final Thread reader;
    private final Thread writer;
    /** Writer thread only: the next frame's sequence number (the frames are made there, in order). */
    private long seq;
    private volatile long framesSent;
    private volatile long pausedUntilNanos;
    private volatile boolean sawEof;
    private volatile boolean writeFailed;
    private volatile boolean reset;
    private volatile boolean shut;
    private volatile boolean closed;

    private JdkPeer(NetSchedule s, NetSchedule.Link link, Socket socket) {
        this.s = s;
        this.link = link;
        this.socket = socket;
        this.parser = new Frames.Parser(Frames.TO_CLIENT, link.id);
        String name = s.prefix + "jdk-" + link.id;
        this.reader = Thread.ofPlatform().name(name + "-r").unstarted(this::readLoop);
        this.writer = Thread.ofPlatform().name(name + "-w").unstarted(this::writeLoop);
    }

    /** Connects (blocking, bounded) and starts the threads; the hello is the first command. */
    static JdkPeer connect(NetSchedule s, NetSchedule.Link link, int port) throws IOException {
        Socket socket = new Socket();
        try {
            socket.connect(NetTesting.loopback(port), 10_000);
            socket.setTcpNoDelay(true);
            socket.setSoTimeout(200); // the reader looks at the round's end this often
        } catch (IOException e) {
            socket.close();
            throw e;
        }
        link.clientPort = socket.getLocalPort();
        JdkPeer p = new JdkPeer(s, link, socket);
        p.commands.add(new Write(new int[] {16})); // the hello: the accepted end learns its link from it
        p.reader.start();
        p.writer.start();
        return p;
    }

    // ------------------------------------------------------------------ the threads

    private void readLoop() {
        byte[] buf = new byte[64 * 1024];
        try {
            InputStream in = socket.getInputStream();
            while (true) {
                while (System.nanoTime() - pausedUntilNanos < 0 && !s.ending) {
                    LockSupport.parkNanos(500_000);
                }
                int n;
                try {
                    n = in.read(buf);
                } catch (SocketTimeoutException idle) {
                    if (closed) {
                        return;
                    }
                    continue;
                }
                if (n < 0) {
                    sawEof = true;
                    return;
                }
                long before = parser.frames();
                parser.accept(buf, 0, n);
                s.framesReceived.add(parser.frames() - before);
                if (parser.error() != null) {
                    s.streamError(this, parser.error());
                    commands.add(Simple.RESET);
                    return; // the reset goes first (the close after it finds the socket closed)
                }
            }
        } catch (IOException e) {
            // reset by the server, or closed by the writer: reading is over
        } finally {
            commands.add(Simple.CLOSE); // after whatever is queued: the peer closes once reading is over
        }
    }

    private void writeLoop() {
        try {
            OutputStream out = socket.getOutputStream();
            while (true) {
                Command c = commands.poll(200, TimeUnit.MILLISECONDS);
                if (c == null) {
                    if (s.ending && closed) {
                        return;
                    }
                    continue;
                }
                switch (c) {
                    case Write w -> {
                        if (writeFailed || shut) {
                            continue;
                        }
                        try {
                            for (int length : w.lengths()) {
                                out.write(Frames.frame(Frames.TO_SERVER, link.id, seq, length));
                                framesSent = ++seq;
                            }
                        } catch (IOException e) {
                            writeFailed = true; // reset, or the server closed and its RST came back
                        }
                    }
                    case Simple.SHUTDOWN_OUTPUT -> {
                        if (!shut && !writeFailed) {
                            shut = true;
                            try {
                                socket.shutdownOutput();
                            } catch (IOException e) {
                                writeFailed = true;
                            }
                        }
                    }
                    case Simple.CLOSE -> {
                        closeSocket();
                        return;
                    }
                    case Simple.RESET -> {
                        reset = true;
                        try {
                            socket.setSoLinger(true, 0);
                        } catch (IOException ignored) {
                            // closed already
                        }
                        closeSocket();
                        return;
                    }
                }
            }
        } catch (InterruptedException | IOException e) {
            closeSocket();
        }
    }

    private void closeSocket() {
        closed = true;
        try {
            socket.close();
        } catch (IOException ignored) {
            // closing a socket: nothing to report
        }
    }

    /** The round is over: closes the socket if nothing did, and waits for both threads (bounded). */
    void stop() throws InterruptedException {
        commands.add(Simple.CLOSE);
        writer.join(10_000);
        closeSocket();
        reader.join(10_000);
        if (reader.isAlive() || writer.isAlive()) {
            s.failure(this + ": its threads did not end");
        }
    }

    // ------------------------------------------------------------------ what anyone may do

    /** Queues {@code n} frames for the writer thread, their lengths chosen here. */
    @Override
    public void writeFrames(int n, int maxLength, RandomGenerator rnd) {
        if (closed) {
            return;
        }
        int[] lengths = new int[n];
        for (int i = 0; i < n; i++) {
            lengths[i] = maxLength <= 0 ? 0 : rnd.nextInt(maxLength + 1);
        }
        commands.add(new Write(lengths));
    }

    @Override
    public boolean writable() {
        return commands.size() < 8;
    }

    @Override
    public void pause(int millis) {
        pausedUntilNanos = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    }

    @Override
    public void resume() {
        pausedUntilNanos = System.nanoTime();
    }

    @Override
    public void shutdownOutput() {
        commands.add(Simple.SHUTDOWN_OUTPUT);
    }

    @Override
    public void close() {
        commands.add(Simple.CLOSE);
    }

    @Override
    public void abort() {
        commands.add(Simple.RESET);
    }

    @Override
    public long framesSent() {
        return framesSent;
    }

    /** Half-closed or closed with no write failing and no reset: every frame written went out before the FIN. */
    @Override
    public boolean sentEverything() {
        return (shut || closed) && !writeFailed && !reset;
    }

    @Override
    public boolean sawEof() {
        return sawEof && !writeFailed && !reset; // a write that met a reset took its error: the read saw 0
    }

    @Override
    public Frames.Parser parser() {
        return parser;
    }

    @Override
    public boolean finished() {
        return closed;
    }

    @Override
    public String toString() {
        return "jdk[link " + link.id + ", port " + link.clientPort + ", sent " + framesSent + ", received "
                + parser.frames() + (sawEof ? ", eof" : "") + (shut ? ", shut" : "") + (closed ? ", closed" : "")
                + (reset ? ", reset" : "") + (writeFailed ? ", write failed" : "") + "]";
    }
}
