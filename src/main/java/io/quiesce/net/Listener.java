package io.quiesce.net;

import io.quiesce.buffer.Chunk;
import io.quiesce.buffer.ChunkQueue;
import io.quiesce.buffer.ReactorMemory;
import io.quiesce.reactor.EventHandler;
import io.quiesce.reactor.Handle;
import io.quiesce.reactor.Interest;
import io.quiesce.reactor.Reactor;
import io.quiesce.reactor.ReactorGroup;
import io.quiesce.reactor.ReactorStats;
import io.quiesce.reactor.ScheduledTask;
import io.quiesce.reactor.internal.ReactorInternals;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;

import java.lang.foreign.MemorySegment;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;

/**
 * One listening socket on one reactor, registered level-triggered: a wake-up accepts a bounded
 * number of connections and does not go on to the {@code EAGAIN} that would say the queue is
 * empty, because a backlog left behind is reported again by the next {@code epoll_wait} anyway.
 *
 * <p><b>How many per wake.</b> The bound adapts: it starts at one, so a reactor that sees one
 * connection at a time pays one {@code accept4} per connection (not two, the second being the
 * {@code EAGAIN}). When a wake took its whole bound and the very next wait reports the listener
 * again, connections are queueing faster than one round takes them: the bound doubles, up to
 * {@link ServerOptions#acceptBatch()}, so a burst costs a few rounds more, not one per connection.
 * An {@code EAGAIN} (the queue held fewer than the bound) brings it down to what was there. The
 * cap keeps a connection storm from starving the open connections; with {@code SO_REUSEPORT}
 * each reactor's listener has its own queue and its own bound.
 *
 * <p><b>EMFILE and friends.</b> A level-triggered listener whose pending connection cannot be
 * accepted would be reported ready forever: the reactor would spin. So on EMFILE, ENFILE, ENOBUFS
 * or ENOMEM (and any unexpected error) the listener drops its interest (one {@code EPOLL_CTL_MOD}),
 * counts it, logs the first time only, and retries from a timer with exponential back-off (10 ms
 * doubling to 1 s); the first successful accept resets the back-off. Pending connections wait in
 * the kernel's backlog meanwhile.
 *
 * <p><b>io_uring.</b> On a reactor running the io_uring transport the socket is never in epoll:
 * {@link UringAcceptor} keeps a multishot accept armed, and hands each accepted socket here.
 */
final class Listener implements EventHandler {
    private static final System.Logger LOG = System.getLogger(Server.class.getName());
    private static final long MIN_BACKOFF_NANOS = TimeUnit.MILLISECONDS.toNanos(10);
    private static final long MAX_BACKOFF_NANOS = TimeUnit.SECONDS.toNanos(1);
    static final int LISTEN_INTEREST = Interest.READ | Interest.LEVEL;

    private final AcceptSpec spec;
    private final Reactor reactor;
    /** Shared by the server's listeners: the first back-off is logged once per server. */
    private final AtomicBoolean backoffLogged;
    private Handle handle;
    /** The multishot accept on an io_uring reactor, or null. */
    private UringAcceptor uring;

    /** This listener's own accept counters (reactor thread writes, any thread reads), for {@link Server#stats()}. */
    final NetStats counts = new NetStats();
    private final NetStats reactorCounts;
    /** {@code accept4} calls that found the queue empty ({@code EAGAIN}); for tests. */
    final AtomicLong acceptsEmpty = new AtomicLong();
    volatile boolean backingOff;

    // ---- reactor thread only ----
    private NetContext ctx;
    private long backoffNanos = MIN_BACKOFF_NANOS;
    private final Runnable resume = this::resume;
    /** At most this many {@code accept4} in this wake-up; 1 to the spec's accept batch. */
    private int perWake = 1;
    /** The reactor's wait count at the last wake-up that took its whole bound; -2 when none. */
    private long fullAtWait = -2;

    Listener(AcceptSpec spec, Reactor reactor, AtomicBoolean backoffLogged) {
        this.spec = spec;
        this.reactor = reactor;
        this.backoffLogged = backoffLogged;
        this.reactorCounts = NetStats.of(reactor);
    }

    void register(int fd) {
        if (reactor.io() == ReactorGroup.Io.URING) {
            uring = new UringAcceptor(this, reactor);
            handle = uring.register(fd);
            return;
        }
        handle = ReactorInternals.registerOwned(reactor, fd, LISTEN_INTEREST, this, null);
    }

    /**
     * io_uring: the multishot accept delivered {@code fd}. Like {@link #onEvent}, an exception
     * taking the connection on (its fd is closed by then) makes the listener back off; it never
     * reaches the ring's dispatch, where it would stop the reactor.
     *
     * @return whether the listener now backs off
     */
    boolean acceptedFromRing(int fd) {
        if (ctx == null) {
            ctx = NetContext.of(reactor);
        }
        count(NetStats.Counter.ACCEPTS);
        backoffNanos = MIN_BACKOFF_NANOS;
        try {
            hand(fd);
            return false;
        } catch (Throwable t) {
            handFailed(t);
            return true;
        }
    }

    /** io_uring: a socket accepted as the listener closes. */
    void closeAccepted(int fd) {
        if (ctx == null) {
            ctx = NetContext.of(reactor);
        }
        ctx.sys.close(fd);
    }

    /**
     * io_uring: the accept failed with {@code errno}; counted as accept4's errors are.
     *
     * @return whether the listener now backs off (EMFILE and the like)
     */
    boolean acceptFailed(int errno) {
        if (ctx == null) {
            ctx = NetContext.of(reactor);
        }
        count(NetStats.Counter.ACCEPT_ERRORS);
        if (errno == Errno.EINTR || errno == Errno.ECONNABORTED || errno == Errno.EPERM
                || errno == Errno.EPROTO || errno == Errno.EAGAIN) {
            return false; // that connection is gone; the accept goes on (or is re-armed)
        }
        backOff(errno);
        return true;
    }

    Handle handle() {
        return handle;
    }

    /**
     * Loaded and initialized with this class, while fds are free: loading a class from a directory
     * on the class path needs one, and the JVM never retries a load that failed (the
     * NoClassDefFoundError stays), which would break the listener for good. The back-off path
     * runs when no fd is free; so can the first connection: on io_uring the kernel accepts a whole
     * backlog in one enter, before the first of it is taken on.
     */
    private static final Class<?>[] PRELOADED = {ScheduledTask.class, SyscallException.class, Connection.class,
            TcpConnection.class, ReadPath.class, OutboundQueue.class, UringStream.class,
            ReactorMemory.class, Chunk.class, ChunkQueue.class};

    static {
        for (Class<?> c : PRELOADED) {
            try {
                Class.forName(c.getName(), true, c.getClassLoader());
            } catch (ClassNotFoundException e) {
                throw new ExceptionInInitializerError(e);
            }
        }
    }

    @Override
    public void onEvent(Handle h, int ready) {
        if (handle == null) {
            handle = h; // the first event can come before register() has stored it
        }
        if (backingOff) {
            return;
        }
        try {
            acceptBatch(h);
        } catch (Throwable t) {
            handFailed(t);
        }
    }

    /** Never let the reactor close the listener (or stop) for an exception taking a connection on: back off instead. */
    private void handFailed(Throwable t) {
        logDuringExhaustion("accepting on {0} failed: {1}", spec.address(), t);
        backOff(0);
    }

    private void acceptBatch(Handle h) {
        if (ctx == null) {
            ctx = NetContext.of(reactor);
        }
        int lfd = h.fd();
        long wait = reactor.stats().get(ReactorStats.Counter.EPOLL_WAITS);
        if (wait == fullAtWait + 1) {
            perWake = Math.min(spec.acceptBatch(), perWake * 2); // the last wake's bound left a backlog
        }
        int taken = 0;
        for (int i = 0; i < perWake; i++) {
            int fd = ctx.sys.accept(lfd, MemorySegment.NULL, MemorySegment.NULL, io.quiesce.sys.raw.Syscalls.SOCK_NONBLOCK);
            if (fd >= 0) {
                taken++;
                count(NetStats.Counter.ACCEPTS);
                backoffNanos = MIN_BACKOFF_NANOS;
                hand(fd);
                continue;
            }
            int errno = -fd;
            if (errno == Errno.EAGAIN) {
                acceptsEmpty.setOpaque(acceptsEmpty.getPlain() + 1);
                perWake = Math.max(1, taken);
                return;
            }
            count(NetStats.Counter.ACCEPT_ERRORS);
            if (errno == Errno.EINTR || errno == Errno.ECONNABORTED || errno == Errno.EPERM
                    || errno == Errno.EPROTO) {
                continue; // that connection is gone (or was refused by a filter); take the next
            }
            backOff(errno);
            return;
        }
        // the bound reached: level-triggered, so the next wait reports what is left, if anything
        fullAtWait = wait;
    }

    private void hand(int fd) {
        ConnectionOptions o = spec.connection();
        if (spec.handOutTo() == null) {
            open(ctx, fd, o);
            return;
        }
        Reactor target = spec.handOutTo().next();
        if (target == reactor) {
            open(ctx, fd, o);
            return;
        }
        try {
            target.execute(() -> open(NetContext.of(target), fd, o));
        } catch (RejectedExecutionException e) {
            ctx.sys.close(fd);
        }
    }

    private void open(NetContext c, int fd, ConnectionOptions o) {
        ConnectionHandler handler;
        try {
            handler = spec.newHandler();
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.WARNING, "the connection handler factory threw; connection closed", t);
            c.sys.close(fd);
            return;
        }
        TcpConnection.accepted(c, fd, o, handler);
    }

    /**
     * A warning logged where no fd may be free: the logging backend may need one (the JDK's
     * default formatter opens its time-zone data on first use) and then throws. That must neither
     * close the listener nor stop the reactor, so a log that fails is dropped; the counters
     * ({@link Server#stats()}) still say what happened.
     */
    private static void logDuringExhaustion(String format, Object... params) {
        try {
            LOG.log(System.Logger.Level.WARNING, format, params);
        } catch (Throwable unloggable) {
            // nothing left to report it with
        }
    }

    /**
     * Stops accepting for a while.
     *
     * @param errno what accept4 said, or 0 for an exception
     */
    private void backOff(int errno) {
        if (backingOff) {
            return;
        }
        boolean exhaustion = errno == Errno.EMFILE || errno == Errno.ENFILE || errno == Errno.ENOBUFS
                || errno == Errno.ENOMEM;
        count(NetStats.Counter.ACCEPT_BACKOFFS);
        if (exhaustion) {
            count(NetStats.Counter.ACCEPT_BACKOFFS_EXHAUSTED);
        }
        if (errno != 0 && backoffLogged.compareAndSet(false, true)) {
            logDuringExhaustion("accept4 on {0}: {1} ({2}); not accepting for {3} ms at a "
                    + "time until it clears (logged once; see Server.stats())", spec.address(),
                    Errno.name(errno), Errno.message(errno), TimeUnit.NANOSECONDS.toMillis(backoffNanos));
        }
        backingOff = true;
        if (uring == null) {
            handle.interest(0);
        }
        reactor.schedule(backoffNanos, TimeUnit.NANOSECONDS, resume);
        backoffNanos = Math.min(backoffNanos * 2, MAX_BACKOFF_NANOS);
    }

    /** Reactor thread: counts on the reactor's set and on this listener's own. */
    private void count(NetStats.Counter c) {
        reactorCounts.increment(c);
        counts.increment(c);
    }

    private void resume() {
        if (!handle.isOpen()) {
            return;
        }
        backingOff = false;
        if (uring != null) {
            uring.arm();
            return;
        }
        handle.interest(LISTEN_INTEREST); // level-triggered: reported at once if anything waits
    }
}
