package io.quiesce.reactor;

import io.quiesce.sys.SyscallException;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * N reactors, by default one per available processor, each a platform thread owning its own
 * epoll. Handles are placed round robin ({@link #next()}) or on a reactor of the caller's choice
 * ({@link #reactor(int)}). {@link #close()} closes every handle, stops and joins every thread and
 * leaves no fd open.
 */
public final class ReactorGroup implements AutoCloseable {
    private static final System.Logger LOG = System.getLogger(ReactorGroup.class.getName());

    /** How a reactor waits for events. */
    public enum Io {
        /** {@code epoll_ctl} per interest change, then {@code epoll_pwait2}: the default. */
        EPOLL,
        /**
         * The interest changes of an iteration and the wait in one {@code io_uring_enter}
         * ({@code IORING_OP_EPOLL_CTL} + {@code IORING_OP_EPOLL_WAIT}, Linux 6.15+). Where
         * io_uring is absent, disabled or lacks an opcode, the reactor uses {@link #EPOLL} and
         * logs why, once.
         */
        BATCH,
        /**
         * The completion-based transport: sockets accept, receive (multishot, into a provided
         * buffer ring) and send through io_uring SQEs, and one {@code io_uring_enter} per
         * iteration submits them with an {@code IORING_OP_EPOLL_WAIT} on the reactor's epoll
         * (its wakeup and caller-registered fds). Needs Linux 6.15+; elsewhere the reactor uses
         * {@link #EPOLL} and logs why, once.
         */
        URING;

        /**
         * {@return the backend named by the system property {@code quiesce.io} ({@code epoll},
         * {@code batch} or {@code uring}), {@link #EPOLL} when it is unset}
         *
         * @throws IllegalArgumentException if it names no backend
         */
        public static Io fromSystemProperty() {
            String v = System.getProperty("quiesce.io", "epoll");
            return switch (v.toLowerCase(java.util.Locale.ROOT)) {
                case "epoll" -> EPOLL;
                case "batch" -> BATCH;
                case "uring" -> URING;
                default -> throw new IllegalArgumentException("quiesce.io: expected epoll, batch or uring, got " + v);
            };
        }
    }

    /**
     * How a group is built.
     *
     * @param threads reactors (threads), at least 1
     * @param pinCpus pin reactor {@code i} to CPU {@code i % nproc} with {@code sched_setaffinity}
     * @param initialEvents starting size of each reactor's {@code epoll_wait} events array
     * @param maxEvents the size the array may grow to when a call fills it
     * @param threadNamePrefix reactor thread names are this plus the index
     * @param io how the reactors wait for events
     * @param uringBuffers {@link Io#URING}: provided receive buffers per reactor, a power of two
     *     from 1 to {@value #MAX_URING_BUFFERS} (default 512)
     * @param uringBufferSize {@link Io#URING}: bytes per receive buffer, from
     *     {@value #MIN_URING_BUFFER_SIZE} to {@value #MAX_URING_BUFFER_SIZE} (default 16 KiB). Each
     *     reactor on the transport keeps {@code uringBuffers × uringBufferSize} bytes (8 MiB by
     *     default) for the kernel to receive into; a receive CQE carries at most one buffer, and
     *     when all are taken receives pause until the buffers of the round come back
     *     ({@code ENOBUFS}, counted, never a stall)
     */
    public record Options(int threads, boolean pinCpus, int initialEvents, int maxEvents, String threadNamePrefix, Io io,
                          int uringBuffers, int uringBufferSize) {
        /** The most provided buffers per reactor (the kernel takes fewer than 65536 ring entries). */
        public static final int MAX_URING_BUFFERS = 1 << 15;
        /** The smallest receive buffer. */
        public static final int MIN_URING_BUFFER_SIZE = 1024;
        /** The largest receive buffer. */
        public static final int MAX_URING_BUFFER_SIZE = 1 << 20;

        /** Checks the values. */
        public Options {
            if (threads < 1) {
                throw new IllegalArgumentException("threads must be >= 1: " + threads);
            }
            if (initialEvents < 1 || maxEvents < initialEvents) {
                throw new IllegalArgumentException("need 1 <= initialEvents <= maxEvents: " + initialEvents + ", " + maxEvents);
            }
            if (threadNamePrefix == null || io == null) {
                throw new NullPointerException("threadNamePrefix and io are required");
            }
            if (uringBuffers < 1 || uringBuffers > MAX_URING_BUFFERS || Integer.bitCount(uringBuffers) != 1) {
                throw new IllegalArgumentException("uringBuffers must be a power of two from 1 to " + MAX_URING_BUFFERS
                        + ": " + uringBuffers);
            }
            if (uringBufferSize < MIN_URING_BUFFER_SIZE || uringBufferSize > MAX_URING_BUFFER_SIZE) {
                throw new IllegalArgumentException("uringBufferSize must be from " + MIN_URING_BUFFER_SIZE + " to "
                        + MAX_URING_BUFFER_SIZE + " bytes: " + uringBufferSize);
            }
        }

        /**
         * {@return one reactor per available processor, unpinned, events array 256 growing to
         * 8192, the backend of {@link Io#fromSystemProperty()} (epoll unless {@code -Dquiesce.io=batch}),
         * 512 receive buffers of 16 KiB for the io_uring transport}
         */
        public static Options defaults() {
            return new Options(Runtime.getRuntime().availableProcessors(), false, 256, 8192, "quiesce-reactor-",
                    Io.fromSystemProperty(), 512, 16 * 1024);
        }

        /**
         * {@return a copy with {@code threads} reactors}
         *
         * @param threads at least 1
         */
        public Options withThreads(int threads) {
            return new Options(threads, pinCpus, initialEvents, maxEvents, threadNamePrefix, io, uringBuffers, uringBufferSize);
        }

        /**
         * {@return a copy with CPU pinning on or off}
         *
         * @param pin whether to pin
         */
        public Options withPinCpus(boolean pin) {
            return new Options(threads, pin, initialEvents, maxEvents, threadNamePrefix, io, uringBuffers, uringBufferSize);
        }

        /**
         * {@return a copy with other events-array sizes}
         * @param initial starting size
         * @param max largest size
         */
        public Options withEvents(int initial, int max) {
            return new Options(threads, pinCpus, initial, max, threadNamePrefix, io, uringBuffers, uringBufferSize);
        }

        /**
         * {@return a copy with another thread-name prefix}
         *
         * @param prefix the prefix
         */
        public Options withThreadNamePrefix(String prefix) {
            return new Options(threads, pinCpus, initialEvents, maxEvents, prefix, io, uringBuffers, uringBufferSize);
        }

        /**
         * {@return a copy with another backend}
         *
         * @param backend how the reactors wait
         */
        public Options withIo(Io backend) {
            return new Options(threads, pinCpus, initialEvents, maxEvents, threadNamePrefix, backend, uringBuffers, uringBufferSize);
        }

        /**
         * {@return a copy with another provided-buffer ring for the io_uring transport}
         *
         * @param count buffers per reactor, a power of two from 1 to {@value #MAX_URING_BUFFERS}
         * @param size bytes per buffer, from {@value #MIN_URING_BUFFER_SIZE} to {@value #MAX_URING_BUFFER_SIZE}
         * @throws IllegalArgumentException if either is out of bounds
         */
        public Options withUringBuffers(int count, int size) {
            return new Options(threads, pinCpus, initialEvents, maxEvents, threadNamePrefix, io, count, size);
        }
    }

    private final List<Reactor> reactors;
    private final AtomicInteger next = new AtomicInteger();
    private volatile boolean closed;

    private ReactorGroup(List<Reactor> reactors) {
        this.reactors = List.copyOf(reactors);
    }

    /**
     * Starts a group with {@link Options#defaults()}.
     *
     * @return the running group
     * @throws SyscallException if an epoll or eventfd cannot be created (e.g. EMFILE)
     */
    public static ReactorGroup start() throws SyscallException {
        return start(Options.defaults());
    }

    /**
     * Starts a group.
     *
     * @param options how many reactors and how they run
     * @return the running group
     * @throws SyscallException if an epoll or eventfd cannot be created; none is left open
     */
    public static ReactorGroup start(Options options) throws SyscallException {
        List<Reactor> made = new ArrayList<>();
        try {
            for (int i = 0; i < options.threads(); i++) {
                made.add(new Reactor(i, options));
            }
        } catch (SyscallException e) {
            for (Reactor r : made) { // started so that their own thread releases their fds
                r.start();
                r.shutdown();
                r.terminationFuture().join();
            }
            throw e;
        }
        made.forEach(Reactor::start);
        // Each thread makes its own ring (single issuer) before its loop: wait for that, so the
        // group is whole (and every fd it owns exists) when start returns.
        made.forEach(r -> r.runningFuture().join());
        return new ReactorGroup(made);
    }

    /** {@return the reactors, in index order} */
    public List<Reactor> reactors() {
        return reactors;
    }

    /**
     * {@return reactor {@code index}}
     *
     * @param index 0 to size-1
     */
    public Reactor reactor(int index) {
        return reactors.get(index);
    }

    /** {@return the number of reactors} */
    public int size() {
        return reactors.size();
    }

    /** {@return the next reactor, round robin; any thread} */
    public Reactor next() {
        return reactors.get(Math.floorMod(next.getAndIncrement(), reactors.size()));
    }

    /**
     * Closes every handle of every reactor, stops the reactors and joins their threads, waiting at
     * most 10 seconds; idempotent. Called on a reactor thread (from a handler, task or timer) it
     * cannot wait for that reactor to stop, so it starts the close and returns at once, as
     * {@link #closeAsync()} does.
     */
    @Override
    public void close() {
        if (Reactor.current() != null) {
            closeAsync();
            return;
        }
        try {
            close(Duration.ofSeconds(10));
        } catch (TimeoutException e) {
            LOG.log(System.Logger.Level.WARNING, e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /**
     * Starts closing every handle and stopping every reactor, and returns at once; any thread.
     *
     * @return a future that completes when every reactor has stopped and released its fds
     *         (exceptionally if a reactor's loop failed; its handles were still closed)
     */
    public CompletableFuture<Void> closeAsync() {
        closed = true;
        reactors.forEach(Reactor::shutdown);
        return CompletableFuture.allOf(
                reactors.stream().map(Reactor::terminationFuture).toArray(CompletableFuture[]::new));
    }

    /**
     * Closes every handle, stops the reactors and joins their threads.
     *
     * @param timeout how long to wait at most
     * @throws TimeoutException if some reactor did not stop in time (a reference to one of its
     *         handles is still held; its fd is released when that reference is dropped)
     * @throws InterruptedException if interrupted while waiting
     * @throws IllegalStateException if called on a reactor thread, which would stall (or, for its
     *         own group, deadlock) that reactor: use {@link #closeAsync()} there
     */
    public void close(Duration timeout) throws TimeoutException, InterruptedException {
        if (Reactor.current() != null) {
            throw new IllegalStateException("a blocking ReactorGroup.close on reactor thread "
                    + Thread.currentThread().getName() + " would stall it; use closeAsync() or close()");
        }
        long deadline = System.nanoTime() + timeout.toNanos();
        CompletableFuture<Void> all = closeAsync();
        try {
            all.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        } catch (ExecutionException e) {
            LOG.log(System.Logger.Level.WARNING, "a reactor failed; its handles were closed", e.getCause());
        } catch (TimeoutException e) {
            throw new TimeoutException("reactors did not stop within " + timeout);
        }
        for (Reactor r : reactors) {
            r.thread().join(TimeUnit.NANOSECONDS.toMillis(Math.max(1, deadline - System.nanoTime())) + 1);
        }
    }

    /** {@return whether {@link #close()} has been called} */
    public boolean isClosed() {
        return closed;
    }
}
