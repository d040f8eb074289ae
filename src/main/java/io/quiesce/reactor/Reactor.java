package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.EpollBatch;
import io.quiesce.uring.TransportRing;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;

/**
 * One event loop: one platform thread that alone owns one epoll fd, one eventfd for wakeups, a
 * task queue ({@link TaskInbox}), timers ({@link TimerHeap}), the batch of pending interest
 * changes ({@link InterestBatch}), the handle table and the closes in progress ({@link CloseQueue}).
 * This class is the public face and the loop; registering and step 1 of the close protocol live
 * in {@link HandleRegistry}, stopping in {@link ReactorShutdown}, and what the net layer may do
 * that a user may not in {@link ReactorHooks}.
 *
 * <p><b>The loop.</b> Run tasks; run due timers; flush interest changes; finish closes;
 * {@code epoll_wait} (timeout from the nearest timer, in nanoseconds through
 * {@code epoll_pwait2}); dispatch; finish closes.
 *
 * <p><b>Closes</b> are finished only between batches (never inside a handler), and to a fixpoint:
 * an {@code onClose} or a close-future continuation that closes another handle or drops a last
 * reference is finished in the same pass, so the loop never waits while a finishable close is
 * pending. A close requested once the reactor has shut its door (shutdown, or its loop failed) is
 * finished by the reactor while it drains, or, once it has exited, by the closing thread itself:
 * the fd is released and the future completed, but no user callback runs on a foreign thread.
 *
 * <p><b>Timers</b> pass the nearest deadline to {@code epoll_pwait2} as a nanosecond timeout. That
 * gives the kernel's resolution without a timerfd: no extra fd per reactor and no
 * {@code timerfd_settime} syscall each time the nearest deadline changes (idle timeouts move it
 * on every read). On kernels before 5.11 ({@code ENOSYS}) the loop falls back to
 * {@code epoll_wait}, rounding up to whole milliseconds.
 *
 * <p><b>Threads.</b> {@link #execute}, {@link #schedule}, {@link #register} and everything on
 * {@link Handle} may be called from any thread; another thread never touches the reactor's state
 * but through the task queue, plus one eventfd write that is skipped unless the reactor is (about
 * to be) blocked in {@code epoll_wait} (STYLE habit 5). Handlers and tasks run on the reactor
 * thread and must not block.
 */
public final class Reactor implements Executor {
    private static final System.Logger LOG = System.getLogger(Reactor.class.getName());
    /** The reactor whose thread this is, if any. */
    private static final ThreadLocal<Reactor> CURRENT = new ThreadLocal<>();
    private static final long WAKE_TOKEN = -1L;
    private static final int MAX_TASKS_PER_ITERATION = 4096;
    private static final VarHandle EPOCH;
    /** How the batch backend builds its ring; tests narrow the probe to force a fallback. */
    static volatile EpollBatch.Options batchOptions = EpollBatch.Options.defaults();
    /**
     * How the io_uring transport builds its ring where tests say (tiny buffers, a forced
     * fallback); null: from the group's options.
     */
    static volatile TransportRing.Options transportOptions;

    static {
        try {
            EPOCH = MethodHandles.lookup().findVarHandle(Reactor.class, "epoch", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final int index;
    private final int epfd;
    private final int wakeFd;
    private final ReactorGroup.Options options;
    private final ReactorStats stats = new ReactorStats();
    private final TaskInbox inbox;
    private final CloseQueue closes;
    private final Thread thread;
    private final CompletableFuture<Void> terminated = new CompletableFuture<>();
    /** Completes once the thread has made its per-thread resources (the ring) and enters the loop. */
    private final CompletableFuture<Void> running = new CompletableFuture<>();
    @SuppressWarnings("unused") // through EPOCH
    private volatile long epoch;
    /** Written by any thread ({@link #shutdown}) and by {@link ReactorShutdown}; read by the loop. */
    volatile boolean shutdownRequested;

    // ---- reactor thread only ----
    private final HandleTable table = new HandleTable();
    private final TimerHeap timers = new TimerHeap();
    final ReactorLocals locals = new ReactorLocals(); // also ReactorHooks
    private Syscalls sys;
    InterestBatch batch; // also read by HandleRegistry
    EventWait wait; // also read by ReactorShutdown and ReactorHooks
    /** Made once: a method reference evaluated per flush would allocate on the event path. */
    private final InterestBatch.FailureSink registrationFailed = this::registrationFailed;
    /** Registration and step 1 of the close protocol. */
    final HandleRegistry registry; // also ReactorHooks
    /** How this reactor stops. */
    final ReactorShutdown stopping;
    private volatile ReactorGroup.Io ioInUse = ReactorGroup.Io.EPOLL;

    Reactor(int index, ReactorGroup.Options options) throws SyscallException {
        this.index = index;
        this.options = options;
        Syscalls s = Syscalls.current();
        this.epfd = Errno.check(s.epollCreate(), "epoll_create1", -1);
        int efd = s.eventfd(0, Syscalls.EFD_NONBLOCK);
        if (efd < 0) {
            s.close(epfd);
            throw new SyscallException("eventfd", -1, -efd);
        }
        this.wakeFd = efd;
        // Edge-triggered and never read: every eventfd write wakes epoll again whatever the
        // counter holds, and a 64-bit counter cannot fill, so a wakeup costs one syscall, not two.
        int r = s.epollCtl(epfd, Syscalls.EPOLL_CTL_ADD, wakeFd, Syscalls.EPOLLIN | Syscalls.EPOLLET, WAKE_TOKEN);
        if (r < 0) {
            s.close(wakeFd);
            s.close(epfd);
            throw new SyscallException("epoll_ctl(ADD eventfd)", wakeFd, -r);
        }
        this.inbox = new TaskInbox(wakeFd, stats);
        this.closes = new CloseQueue(stats, index);
        this.registry = new HandleRegistry(this, index, stats, table, closes);
        this.stopping = new ReactorShutdown(this, index, registry, table, timers, inbox, closes);
        this.thread = Thread.ofPlatform().name(options.threadNamePrefix() + index).daemon(false)
                .unstarted(this::run);
    }

    void start() {
        thread.start();
    }

    /** {@return completes once the thread has made its resources and runs its loop (or has stopped)} */
    CompletableFuture<Void> runningFuture() {
        return running;
    }

    /** {@return this reactor's index in its group} */
    public int index() {
        return index;
    }

    /** {@return the counters this reactor keeps} */
    public ReactorStats stats() {
        return stats;
    }

    /** {@return the reactor whose thread calls this, or null on any other thread} */
    static Reactor current() {
        return CURRENT.get();
    }

    /** {@return whether the caller is this reactor's thread} */
    public boolean inReactorThread() {
        return Thread.currentThread() == thread;
    }

    /**
     * {@return the backend this reactor waits with: {@link ReactorGroup.Io#BATCH} only if it was
     * asked for and io_uring can do it here}
     */
    public ReactorGroup.Io io() {
        return ioInUse;
    }

    /** The epoll fd (tests, nesting). */
    int epollFd() {
        return epfd;
    }

    /**
     * {@return the epoch: the number of finished batches, read with acquire semantics} An fd
     * removed from epoll during epoch {@code e} can have no event in anyone's hands once the epoch
     * is past {@code e}.
     */
    public long epochAcquire() {
        return (long) EPOCH.getAcquire(this);
    }

    /** {@return a future that completes when the reactor thread has stopped and closed its fds} */
    public CompletableFuture<Void> terminationFuture() {
        return terminated;
    }

    // ------------------------------------------------------------------ any thread

    /**
     * Runs {@code task} on the reactor thread, after the tasks already queued. Wakes the reactor
     * (one eventfd write) only if it is blocked or about to block in {@code epoll_wait}.
     *
     * @throws RejectedExecutionException if the reactor has shut down
     */
    @Override
    public void execute(Runnable task) {
        if (!tryExecute(task)) {
            throw new RejectedExecutionException("reactor " + index + " is shut down");
        }
    }

    /** {@link #execute} that answers false instead of throwing once the door is shut. */
    boolean tryExecute(Runnable task) {
        if (inReactorThread()) {
            inbox.offerOwn(task);
            return true;
        }
        return inbox.offer(task);
    }

    /**
     * Runs {@code task} on the reactor thread once {@code delay} has passed.
     *
     * @param delay how long from now, at least 0
     * @param unit the unit of {@code delay}
     * @param task what to run
     * @return the scheduled task, which can be cancelled from any thread; a timer still pending
     *         when the reactor shuts down (or scheduled while it does) is cancelled, so
     *         {@link ScheduledTask#isCancelled()} tells that it will never run
     * @throws IllegalArgumentException if {@code delay} is negative
     * @throws RejectedExecutionException if called from another thread once the reactor has shut
     *         down
     */
    public ScheduledTask schedule(long delay, TimeUnit unit, Runnable task) {
        if (delay < 0) {
            throw new IllegalArgumentException("negative delay: " + delay);
        }
        if (task == null) {
            throw new NullPointerException("task");
        }
        var t = new ScheduledTask(this, System.nanoTime() + unit.toNanos(delay), task);
        if (inReactorThread()) {
            addTimer(t);
        } else {
            execute(() -> addTimer(t));
        }
        return t;
    }

    private void addTimer(ScheduledTask t) {
        if (stopping.started()) {
            t.cancel(); // it will never run: say so
        } else if (!t.isCancelled()) {
            timers.add(t);
        }
    }

    /** Any thread: a timer was cancelled (it may or may not still be in the heap). */
    void timerCancelled() {
        timers.cancelled();
    }

    /** {@return timers in the heap, cancelled ones not yet purged included} (tests) */
    int timersQueued() {
        return timers.size();
    }

    /**
     * Registers {@code fd} with {@code interest}; from now on the handle owns the fd and closing
     * the handle closes it. The {@code epoll_ctl(ADD)} is issued right before the reactor's next
     * wait (and not at all if the handle is closed first).
     *
     * @param fd an open fd, preferably non-blocking
     * @param interest {@link Interest} bits
     * @param handler called on the reactor thread when the fd is ready
     * @return the handle
     * @throws IllegalArgumentException on a negative fd, unknown interest bits, or an fd number
     *         that a live handle (of any reactor) already owns: two owners would both close it
     * @throws ClosedHandleException if the reactor has shut down
     */
    public Handle register(int fd, int interest, EventHandler handler) {
        // epoll-dup-shutdown-close.txt: the caller made this fd and may hold a dup of it, which
        // would keep the registration alive after close(fd); so its close always issues the DEL.
        return registry.register(fd, interest, handler, false, null);
    }

    // ------------------------------------------------------------------ handle callbacks

    void changeInterest(Handle h, int interest) { // interest -1: re-arm a ONESHOT with the mask it has
        if (inReactorThread()) {
            applyInterest(h, interest);
        } else {
            // Refused only if the door shut after the caller's isOpen check: shutdown is closing
            // this handle, and a change to a closing handle is dropped anyway.
            tryExecute(() -> applyInterest(h, interest));
        }
    }

    private void applyInterest(Handle h, int interest) {
        if (h.registration.closeProcessed() || !h.isOpen()) {
            stats.increment(Counter.CTL_DROPPED_CLOSING);
            return;
        }
        batch.change(h, interest);
    }

    // ------------------------------------------------------------------ reactor thread: the close protocol

    /** Steps 2 and 3, between batches: see {@link CloseQueue}. */
    boolean finishCloses() {
        return closes.finish(sys);
    }

    private TransportRing.Options transportOptions() {
        TransportRing.Options forced = transportOptions;
        return forced != null ? forced
                : TransportRing.Options.defaults().withBuffers(options.uringBuffers(), options.uringBufferSize());
    }

    private void advanceEpoch() {
        EPOCH.setRelease(this, (long) EPOCH.get(this) + 1);
    }

    // ------------------------------------------------------------------ reactor thread: the loop

    private void run() {
        CURRENT.set(this);
        Throwable failure = null;
        try (Arena a = Arena.ofConfined()) {
            sys = new Syscalls(a);
            batch = new InterestBatch(sys, epfd, stats);
            wait = new EventWait(sys, epfd, a, stats, batch, registrationFailed, options.initialEvents(), options.maxEvents());
            if (options.pinCpus()) {
                int cpu = index % Runtime.getRuntime().availableProcessors();
                int r = sys.pinCurrentThread(cpu);
                if (r < 0) {
                    LOG.log(System.Logger.Level.WARNING, "sched_setaffinity(cpu {0}): {1}", cpu, Errno.name(-r));
                }
            }
            if (options.io() == ReactorGroup.Io.BATCH && wait.useBatch(batchOptions)) {
                ioInUse = ReactorGroup.Io.BATCH;
            } else if (options.io() == ReactorGroup.Io.URING && wait.useTransport(transportOptions())) {
                ioInUse = ReactorGroup.Io.URING;
            }
            running.complete(null);
            try {
                loop();
            } catch (Throwable t) {
                failure = t;
                try {
                    LOG.log(System.Logger.Level.ERROR, "reactor " + index + " failed; closing its "
                            + table.open() + " handles and " + closes.size() + " pending closes", t);
                } catch (Throwable unloggable) {
                    // the logger failed too (e.g. it needed an fd and none was free): close anyway
                }
            }
            stopping.drainAfterStop(failure);
            closes.exit();
            // The last chance to finish, here and with onClose, what arrived in between; later
            // arrivals are finished by their own thread.
            closes.adoptOrphans(registry::processClose);
            finishCloses();
            locals.closeAll();
            wait.close(); // on this thread: the ring is single-issuer
        } catch (Throwable t) {
            if (failure == null) {
                failure = t;
            }
            LOG.log(System.Logger.Level.ERROR, "reactor " + index + " failed while stopping", t);
        } finally {
            closes.exit();
            inbox.shutDoor();
            closes.finishOrphansOffThread(); // only if stopping itself failed: else there are none
            Syscalls s = Syscalls.current();
            s.close(wakeFd);
            s.close(epfd);
            CURRENT.remove();
            running.complete(null); // a reactor that failed before its loop is running no more
            if (failure != null) {
                terminated.completeExceptionally(failure);
            } else {
                terminated.complete(null);
            }
        }
    }

    private void loop() throws SyscallException {
        long busySince = System.nanoTime();
        while (true) {
            runTasks();
            if (!timers.isEmpty()) {
                timers.runDue(System.nanoTime(), stats, index);
            }
            if (!batch.isEmpty()) {
                batch.flush(registrationFailed);
            }
            finishCloses();
            if (shutdownRequested && stopping.step()) {
                return;
            }

            long timeoutNanos = waitTimeoutNanos();
            if (timeoutNanos != 0 && !inbox.park()) { // a task came in before we parked: don't sleep on it
                timeoutNanos = 0;
            }
            long before = System.nanoTime();
            stats.add(Counter.BUSY_NANOS, before - busySince);
            stats.parking(before); // a reader credits the wait in progress (an idle reactor reads idle)
            int n = wait.await(timeoutNanos);
            inbox.awake();
            busySince = System.nanoTime();
            stats.woke(busySince - before);
            stats.increment(Counter.EPOLL_WAITS);
            int completions = wait.dispatchCompletions();
            if (n == 0) {
                stats.increment(Counter.EPOLL_WAITS_EMPTY);
                if (completions == 0) {
                    continue;
                }
            }
            dispatch(n);
            advanceEpoch();
            finishCloses();
            wait.growIfFull(n);
        }
    }

    private long waitTimeoutNanos() {
        if (!inbox.isEmpty() || !batch.isEmpty()) {
            return 0;
        }
        if (shutdownRequested) {
            return TimeUnit.MILLISECONDS.toNanos(10); // poll references outliving the shutdown
        }
        return timers.nanosUntilNext(System.nanoTime());
    }

    private void dispatch(int n) {
        MemorySegment ev = wait.events();
        for (int i = 0; i < n; i++) {
            long base = i * Syscalls.EPOLL_EVENT_SIZE;
            int ready = ev.get(ValueLayout.JAVA_INT_UNALIGNED, base);
            long token = ev.get(Syscalls.U64_UNALIGNED, base + Syscalls.EPOLL_EVENT_DATA_OFFSET);
            if (token == WAKE_TOKEN) {
                stats.increment(Counter.WAKEUPS_RECEIVED);
                continue;
            }
            Handle h = table.lookup(token);
            if (h == null) {
                stats.increment(Counter.STALE_EVENTS_DROPPED);
                continue;
            }
            Registration reg = h.registration;
            int k = reg.kernelEvents();
            if (k != Registration.NOT_IN_KERNEL && k != Registration.DISARMED && (k & Syscalls.EPOLLONESHOT) != 0) {
                reg.kernelHas(Registration.DISARMED); // fired: the kernel disabled it until a MOD
            }
            stats.increment(Counter.EVENTS_DISPATCHED);
            try {
                h.handler().onEvent(h, ready);
            } catch (Throwable t) {
                stats.increment(Counter.HANDLER_FAILURES);
                LOG.log(System.Logger.Level.DEBUG, "handler of fd " + h.fd() + " threw; closing it", t);
                h.closeWith(t);
            }
        }
    }

    /**
     * Runs the tasks queued when the phase began (at most {@value #MAX_TASKS_PER_ITERATION}):
     * a task that queues another, directly or through a handler, cannot keep the loop from
     * reaching {@code epoll_wait}.
     */
    private void runTasks() {
        int budget = Math.min(inbox.size(), MAX_TASKS_PER_ITERATION);
        for (int i = 0; i < budget; i++) {
            if (!runOneTask()) {
                return;
            }
        }
    }

    /** {@return false if the queue was empty} */
    boolean runOneTask() {
        Runnable t = inbox.poll();
        if (t == null) {
            return false;
        }
        stats.increment(Counter.TASKS_RUN);
        try {
            t.run();
        } catch (Throwable e) {
            LOG.log(System.Logger.Level.WARNING, "task on reactor " + index + " threw", e);
        }
        return true;
    }

    private void registrationFailed(Handle h, SyscallException cause) {
        LOG.log(System.Logger.Level.DEBUG, "registration of fd {0} failed: {1}", h.fd(), cause.getMessage());
        h.closeWith(cause);
    }

    /** Asks the reactor to close every handle, then stop. Returns at once. */
    void shutdown() {
        shutdownRequested = true;
        if (!inReactorThread()) {
            inbox.offer(() -> {}); // wakes the reactor if it is parked; false if already stopped
        }
    }

    /** {@return the thread, for joining} */
    Thread thread() {
        return thread;
    }

    @Override
    public String toString() {
        return "Reactor[" + index + ", epfd=" + epfd + "]";
    }
}
