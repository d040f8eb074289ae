package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.Syscalls;
import org.jctools.queues.MpscUnboundedXaddArrayQueue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.PriorityQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One event loop: one platform thread that alone owns one epoll fd, one eventfd for wakeups, an
 * MPSC task queue, timers, the batch of pending interest changes and the handle table.
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
 * <p><b>Timers</b> live in a heap on the reactor thread; the loop passes the nearest deadline to
 * {@code epoll_pwait2} as a nanosecond timeout. That gives the kernel's resolution without a
 * timerfd: no extra fd per reactor and no {@code timerfd_settime} syscall each time the nearest
 * deadline changes (idle timeouts move it on every read). On kernels before 5.11 ({@code ENOSYS})
 * the loop falls back to {@code epoll_wait}, rounding up to whole milliseconds.
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
    /**
     * Every live handle by fd number, process-wide: a second registration of a number that a live
     * handle owns is refused (two owners would both close it). An entry leaves just before its
     * {@code close(fd)}, so the number cannot be handed out again while the entry is there.
     */
    private static final ConcurrentHashMap<Integer, Handle> FD_OWNERS = new ConcurrentHashMap<>();
    private static final long WAKE_TOKEN = -1L;
    private static final int AWAKE = 0;
    private static final int PARKED = 1;
    private static final int MAX_TASKS_PER_ITERATION = 4096;
    private static final VarHandle WAKE_STATE;
    private static final VarHandle PRODUCERS;
    private static final VarHandle EPOCH;

    static {
        try {
            var lookup = MethodHandles.lookup();
            WAKE_STATE = lookup.findVarHandle(Reactor.class, "wakeState", int.class);
            PRODUCERS = lookup.findVarHandle(Reactor.class, "producers", int.class);
            EPOCH = lookup.findVarHandle(Reactor.class, "epoch", long.class);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }

    private final int index;
    private final int epfd;
    private final int wakeFd;
    private final ReactorGroup.Options options;
    private final ReactorStats stats = new ReactorStats();
    private final MpscUnboundedXaddArrayQueue<Runnable> tasks = new MpscUnboundedXaddArrayQueue<>(1024);
    private final Thread thread;
    private final CompletableFuture<Void> terminated = new CompletableFuture<>();
    @SuppressWarnings("unused") // through WAKE_STATE
    private volatile int wakeState = AWAKE;
    /**
     * Other threads inside {@link #execute} (offer + wakeup), with the sign bit set once the
     * reactor has shut its door. The reactor's own eventfd and queue get the same protection as a
     * handle's fd: once the door is shut and this count has drained, no task can be lost in the
     * queue and no late wakeup can write into a reused fd number.
     */
    @SuppressWarnings("unused") // through PRODUCERS
    private volatile int producers;
    @SuppressWarnings("unused") // through EPOCH
    private volatile long epoch;
    private volatile boolean shutdownRequested;
    /**
     * Closes (and last releases) that arrived after the door shut, when the task queue no longer
     * takes them: drained by the reactor while it still runs, by the arriving thread once
     * {@link #exited} is set. The two checks (add, then read {@code exited}; set {@code exited},
     * then drain) ensure one of the two sees every entry.
     */
    private final ConcurrentLinkedQueue<Handle> orphans = new ConcurrentLinkedQueue<>();
    /** The reactor thread has finished every close it will ever finish. */
    private volatile boolean exited;
    private final Runnable finishClosesTask = this::finishCloses;

    // ---- reactor thread only ----
    private final HandleTable table = new HandleTable();
    private final ArrayDeque<Handle> closing = new ArrayDeque<>();
    private final PriorityQueue<ScheduledTask> timers = new PriorityQueue<>();
    /** Per-reactor objects of the layers above ({@link #local}), in creation order. */
    private final LinkedHashMap<Class<?>, Object> locals = new LinkedHashMap<>();
    private long timerSequence;
    private static final int PURGE_MIN_CANCELLED = 256;
    /** Cancels since the last purge, from any thread. */
    private final java.util.concurrent.atomic.AtomicInteger cancelledTimers = new java.util.concurrent.atomic.AtomicInteger();
    private Syscalls sys;
    private InterestBatch batch;
    private MemorySegment events;
    private int maxEvents;
    private Arena arena;
    private boolean pwait2 = true;
    private boolean shutdownStarted;
    private boolean finishing;

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
        stats.taskQueueDepth(tasks::size);
        this.thread = Thread.ofPlatform().name(options.threadNamePrefix() + index).daemon(false)
                .unstarted(this::run);
    }

    void start() {
        thread.start();
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
    private boolean tryExecute(Runnable task) {
        if (inReactorThread()) {
            tasks.offer(task);
            return true;
        }
        if ((int) PRODUCERS.getAndAdd(this, 1) < 0) {
            PRODUCERS.getAndAdd(this, -1);
            return false;
        }
        try {
            tasks.offer(task);
            wakeup();
        } finally {
            PRODUCERS.getAndAdd(this, -1);
        }
        return true;
    }

    /** Wakes the reactor if it is parked, otherwise counts an elided wakeup. Inside the producer guard. */
    private void wakeup() {
        if ((int) WAKE_STATE.getVolatile(this) == PARKED && WAKE_STATE.compareAndSet(this, PARKED, AWAKE)) {
            Syscalls.current().eventfdWrite(wakeFd, 1);
            stats.wakeupsSent.increment();
        } else {
            stats.wakeupsElided.increment();
        }
    }

    /**
     * Shuts the door: from now on {@link #execute} from other threads is rejected. Returns once no
     * other thread is inside it, so every task offered before is visible in the queue.
     */
    private void shutDoor() {
        if ((int) PRODUCERS.getVolatile(this) >= 0) {
            PRODUCERS.getAndAdd(this, Integer.MIN_VALUE);
        }
        while ((int) PRODUCERS.getVolatile(this) != Integer.MIN_VALUE) {
            Thread.onSpinWait(); // a producer is between its check and its offer: nanoseconds
        }
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
        if (shutdownStarted) {
            t.cancel(); // it will never run: say so
            return;
        }
        if (t.isCancelled()) {
            return;
        }
        int cancelled = cancelledTimers.get();
        if (cancelled > PURGE_MIN_CANCELLED && cancelled > timers.size() / 2) {
            // Idle timeouts are cancelled far more often than they fire: without a purge, each
            // would stay in the heap until its deadline.
            cancelledTimers.set(0);
            timers.removeIf(ScheduledTask::isCancelled);
        }
        t.sequence = timerSequence++;
        timers.add(t);
    }

    /** Any thread: a timer was cancelled (it may or may not still be in the heap). */
    void timerCancelled() {
        cancelledTimers.incrementAndGet();
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
        return register(fd, interest, handler, false);
    }

    /**
     * Registers an fd that Quiesce itself created and never exposes (the net layer's sockets):
     * no {@code dup} of it can exist, so its close skips the explicit {@code EPOLL_CTL_DEL}
     * (closing the fd removes it from epoll). Not public: a caller's own fd may always have been
     * dup'd. Reached from the net layer through {@code io.quiesce.reactor.internal}.
     */
    Handle registerOwned(int fd, int interest, EventHandler handler) {
        return register(fd, interest, handler, true);
    }

    private Handle register(int fd, int interest, EventHandler handler, boolean exclusive) {
        if (fd < 0) {
            throw new IllegalArgumentException("negative fd: " + fd);
        }
        Interest.check(interest);
        if (handler == null) {
            throw new NullPointerException("handler");
        }
        if (shutdownRequested) {
            throw new ClosedHandleException("reactor " + index + " is shutting down");
        }
        Handle h = new Handle(this, fd, interest, handler, exclusive);
        Handle owner = FD_OWNERS.putIfAbsent(fd, h);
        if (owner != null) {
            throw new IllegalArgumentException("fd " + fd + " is already registered (" + owner
                    + " on reactor " + owner.reactor().index + "): one live handle per fd");
        }
        if (inReactorThread()) {
            attach(h);
        } else if (!tryExecute(() -> attach(h))) {
            FD_OWNERS.remove(fd, h);
            throw new ClosedHandleException("reactor " + index + " is shut down");
        }
        return h;
    }

    /**
     * Reactor thread only: the per-reactor object of type {@code key}, made by {@code factory} on
     * first use. This is where a layer above keeps what belongs to one reactor (the net layer's
     * read buffer and write-buffer pool, in a confined arena made on this thread); it is looked
     * up once per connection, not per event. An object that is {@link AutoCloseable} is closed
     * on this thread when the reactor stops, after its last handle has been closed.
     *
     * @param key the object's class, used as its key
     * @param factory makes the object, on this thread
     * @param <T> the object's type
     * @return the object
     * @throws IllegalStateException if called from another thread
     */
    public <T> T local(Class<T> key, Supplier<? extends T> factory) {
        if (!inReactorThread()) {
            throw new IllegalStateException("Reactor.local is for reactor " + index + "'s own thread");
        }
        Object o = locals.get(key);
        if (o == null) {
            o = key.cast(factory.get());
            locals.put(key, o);
        }
        return key.cast(o);
    }

    /** Closes the locals in reverse creation order: a later one may use an earlier one. */
    private void closeLocals() {
        List<Object> made = new ArrayList<>(locals.values());
        for (Object o : made.reversed()) {
            if (o instanceof AutoCloseable c) {
                try {
                    c.close();
                } catch (Exception e) {
                    LOG.log(System.Logger.Level.WARNING, "closing per-reactor " + o + " failed", e);
                }
            }
        }
        locals.clear();
    }

    // ------------------------------------------------------------------ handle callbacks

    void closeRequested(Handle h) {
        if (inReactorThread()) {
            processClose(h);
        } else if (!tryExecute(() -> processClose(h))) {
            adopt(h);
        }
    }

    void lastReferenceDropped(Handle h) {
        if (inReactorThread()) {
            return; // finishCloses() runs at the next point between batches, before any wait
        }
        if (!tryExecute(finishClosesTask)) {
            adopt(h);
        }
    }

    /**
     * The door is shut, so the task queue takes nothing more: leave {@code h} to the reactor's
     * drain, or finish it here if the reactor has already exited.
     */
    private void adopt(Handle h) {
        orphans.add(h);
        if (exited) {
            finishOrphansOffThread();
        }
    }

    /**
     * After the reactor exited: release every orphan with no reference left. Its fd is no longer
     * in any epoll this reactor waits on (it waits on none), so no event can reach it; the fd is
     * closed and the future completed, but {@code onClose} does not run on this foreign thread.
     */
    private void finishOrphansOffThread() {
        Handle h;
        while ((h = orphans.poll()) != null) {
            if (h.references() == 0 && h.tryMarkClosed()) {
                closeFd(h, Syscalls.current());
                LOG.log(System.Logger.Level.DEBUG, "fd {0} released after reactor {1} exited; onClose not run off its thread",
                        h.fd(), index);
                h.closeFuture().complete(null);
            } // else a reference is still held: its release adopts it again
        }
    }

    /** Reactor thread: takes over the closes that arrived after the door shut. */
    private boolean adoptOrphans() {
        boolean any = false;
        Handle h;
        while ((h = orphans.poll()) != null) {
            any = true;
            processClose(h); // no-op if already processed: then it waits in `closing`
        }
        return any;
    }

    void changeInterest(Handle h, int interest) { // interest -1: re-arm a ONESHOT with the mask it has
        if (inReactorThread()) {
            applyInterest(h, interest);
        } else {
            execute(() -> applyInterest(h, interest));
        }
    }

    private void applyInterest(Handle h, int interest) {
        if (h.closeProcessed || !h.isOpen()) {
            stats.increment(Counter.CTL_DROPPED_CLOSING);
            return;
        }
        batch.change(h, interest);
    }

    // ------------------------------------------------------------------ reactor thread

    private void attach(Handle h) {
        stats.increment(Counter.HANDLES_REGISTERED);
        if (!h.isOpen()) {
            // Closed by another thread before this task ran. Its close request (a task behind this
            // one, or an orphan once the door has shut) finishes it; it never enters the table or
            // the kernel, so no event can follow its onClose.
            return;
        }
        if (shutdownStarted) { // slipped in while the reactor was closing everything
            h.closeWith(new ClosedHandleException("reactor " + index + " is shutting down"));
            return;
        }
        table.add(h);
        stats.handlesOpen(table.open());
        batch.change(h, h.wantedInterest);
    }

    /** Step 1 of the close protocol: DEL and mark the slot dead; the release waits for the references. */
    private void processClose(Handle h) {
        if (h.closeProcessed) {
            return;
        }
        h.closeProcessed = true;
        if (h.slot >= 0) {
            int r = batch.remove(h);
            if (r < 0) {
                LOG.log(System.Logger.Level.DEBUG, "epoll_ctl(DEL) of fd {0}: {1}", h.fd(), Errno.name(-r));
            }
            table.remove(h);
            stats.handlesOpen(table.open());
        } else { // closed before the reactor attached it: neither ADD nor DEL is needed
            stats.increment(Counter.CTL_ADD_SAVED);
            stats.increment(Counter.CTL_DEL_SAVED);
        }
        closing.add(h);
    }

    /**
     * Step 2: releases every processed close with no reference left, to a fixpoint. Called only
     * between batches, never inside a handler, and that is the quiescence barrier: processClose
     * ran on this thread and freed the slot (bumping its generation), so the rest of any batch
     * already fetched drops the handle's events by token, and no handler of it is running; a
     * handler that closed its own handle returned before we got here. An onClose or a close
     * future's continuation may close more handles or drop last references: each pass that
     * released something looks again, so the loop never waits with a finishable close pending.
     *
     * @return whether anything was released
     */
    private boolean finishCloses() {
        if (finishing || closing.isEmpty()) {
            return false;
        }
        finishing = true;
        boolean any = false;
        try {
            boolean progress = true;
            while (progress && !closing.isEmpty()) {
                progress = false;
                for (int n = closing.size(); n > 0; n--) {
                    Handle h = closing.poll();
                    if (h.references() == 0) {
                        release(h);
                        progress = true;
                    } else {
                        closing.add(h);
                    }
                }
                any |= progress;
            }
        } finally {
            finishing = false;
        }
        return any;
    }

    private void release(Handle h) {
        if (!h.tryMarkClosed()) {
            return;
        }
        closeFd(h, sys);
        stats.increment(Counter.CLOSES_COMPLETED);
        stats.recordCloseLatency(System.nanoTime() - h.closeRequestedNanos);
        notifyClosed(h);
    }

    /** {@code close(fd)} of a handle marked CLOSED: exactly once. */
    private void closeFd(Handle h, Syscalls s) {
        FD_OWNERS.remove(h.fd(), h); // before close: the number is not reusable until then
        int r = s.close(h.fd());
        if (r < 0) {
            stats.increment(Counter.CLOSE_ERRORS);
            LOG.log(System.Logger.Level.WARNING, "close(fd {0}): {1}", h.fd(), Errno.name(-r));
        }
    }

    private static void notifyClosed(Handle h) {
        try {
            h.handler().onClose(h, h.closeCause);
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.WARNING, "onClose of fd " + h.fd() + " threw", t);
        } finally {
            h.closeFuture().complete(null);
        }
    }

    private void advanceEpoch() {
        EPOCH.setRelease(this, (long) EPOCH.get(this) + 1);
    }

    private void run() {
        CURRENT.set(this);
        Throwable failure = null;
        try (Arena a = Arena.ofConfined()) {
            arena = a;
            sys = new Syscalls(a);
            batch = new InterestBatch(sys, epfd, stats);
            maxEvents = options.initialEvents();
            events = a.allocate(Syscalls.EPOLL_EVENT_SIZE * maxEvents, 8);
            if (options.pinCpus()) {
                int cpu = index % Runtime.getRuntime().availableProcessors();
                int r = sys.pinCurrentThread(cpu);
                if (r < 0) {
                    LOG.log(System.Logger.Level.WARNING, "sched_setaffinity(cpu {0}): {1}", cpu, Errno.name(-r));
                }
            }
            try {
                loop();
            } catch (Throwable t) {
                failure = t;
                LOG.log(System.Logger.Level.ERROR, "reactor " + index + " failed; closing its "
                        + table.open() + " handles and " + closing.size() + " pending closes", t);
            }
            drainAfterStop(failure);
            exited = true;
            finishClosesAtExit();
            closeLocals();
        } catch (Throwable t) {
            if (failure == null) {
                failure = t;
            }
            LOG.log(System.Logger.Level.ERROR, "reactor " + index + " failed while stopping", t);
        } finally {
            exited = true;
            shutDoor();
            finishOrphansOffThread(); // only if stopping itself failed: else there are none
            Syscalls s = Syscalls.current();
            s.close(wakeFd);
            s.close(epfd);
            CURRENT.remove();
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
            runTimers();
            if (!batch.isEmpty()) {
                batch.flush(this::registrationFailed);
            }
            finishCloses();
            if (shutdownRequested && shutdownStep()) {
                return;
            }

            long timeoutNanos = waitTimeoutNanos();
            if (timeoutNanos != 0) {
                WAKE_STATE.setVolatile(this, PARKED);
                if (!tasks.isEmpty()) { // a task came in before we parked: don't sleep on it
                    WAKE_STATE.setOpaque(this, AWAKE);
                    timeoutNanos = 0;
                }
            }
            long before = System.nanoTime();
            stats.add(Counter.BUSY_NANOS, before - busySince);
            int n = epollWait(timeoutNanos);
            WAKE_STATE.setOpaque(this, AWAKE);
            busySince = System.nanoTime();
            stats.add(Counter.WAIT_NANOS, busySince - before);
            stats.increment(Counter.EPOLL_WAITS);
            if (n == 0) {
                stats.increment(Counter.EPOLL_WAITS_EMPTY);
                continue;
            }
            dispatch(n);
            advanceEpoch();
            finishCloses();
            if (n == maxEvents && maxEvents < options.maxEvents()) {
                maxEvents = Math.min(maxEvents * 2, options.maxEvents());
                events = arena.allocate(Syscalls.EPOLL_EVENT_SIZE * maxEvents, 8);
                stats.increment(Counter.EVENT_ARRAY_GROWTHS);
            }
        }
    }

    private long waitTimeoutNanos() {
        if (!tasks.isEmpty() || !batch.isEmpty()) {
            return 0;
        }
        if (shutdownRequested) {
            return TimeUnit.MILLISECONDS.toNanos(10); // poll references outliving the shutdown
        }
        ScheduledTask next = timers.peek();
        if (next == null) {
            return -1;
        }
        return Math.max(0, next.deadlineNanos - System.nanoTime());
    }

    /**
     * {@code epoll_wait} for at most {@code timeoutNanos} ({@code -1}: no limit). EINTR (a signal
     * arrived; a sampling profiler sends them all the time) waits again for what is left until
     * the deadline, not for the whole timeout again, so signals never postpone a timer.
     */
    private int epollWait(long timeoutNanos) throws SyscallException {
        long deadline = timeoutNanos > 0 ? System.nanoTime() + timeoutNanos : 0;
        long remaining = timeoutNanos;
        while (true) {
            int n;
            if (pwait2) {
                n = sys.epollWaitNanos(epfd, events, maxEvents, remaining);
                if (n == -Errno.ENOSYS) { // Linux < 5.11: millisecond timeouts, rounded up
                    pwait2 = false;
                    continue;
                }
            } else {
                int millis = remaining < 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, (remaining + 999_999) / 1_000_000);
                n = sys.epollWait(epfd, events, maxEvents, millis);
            }
            if (n >= 0) {
                return n;
            }
            if (n != -Errno.EINTR) {
                throw new SyscallException("epoll_wait", epfd, -n);
            }
            stats.increment(Counter.EPOLL_WAITS_INTERRUPTED);
            if (timeoutNanos > 0) {
                remaining = Math.max(0, deadline - System.nanoTime());
            }
        }
    }

    private void dispatch(int n) {
        MemorySegment ev = events;
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
            int k = h.kernelEvents;
            if (k != Handle.NOT_IN_KERNEL && k != Handle.DISARMED && (k & Syscalls.EPOLLONESHOT) != 0) {
                h.kernelEvents = Handle.DISARMED; // fired: the kernel disabled it until a MOD
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
        int budget = Math.min(tasks.size(), MAX_TASKS_PER_ITERATION);
        for (int i = 0; i < budget; i++) {
            Runnable t = tasks.poll(); // waits out an offer whose slot is claimed but not yet filled
            if (t == null) {
                return;
            }
            stats.increment(Counter.TASKS_RUN);
            try {
                t.run();
            } catch (Throwable e) {
                LOG.log(System.Logger.Level.WARNING, "task on reactor " + index + " threw", e);
            }
        }
    }

    private void runTimers() {
        if (timers.isEmpty()) {
            return;
        }
        long now = System.nanoTime();
        ScheduledTask t;
        while ((t = timers.peek()) != null && t.deadlineNanos - now <= 0) {
            timers.poll();
            if (t.isCancelled()) {
                continue;
            }
            stats.increment(Counter.TIMERS_FIRED);
            try {
                t.task.run();
            } catch (Throwable e) {
                LOG.log(System.Logger.Level.WARNING, "timer task on reactor " + index + " threw", e);
            }
        }
    }

    private void registrationFailed(Handle h, SyscallException cause) {
        LOG.log(System.Logger.Level.DEBUG, "registration of fd {0} failed: {1}", h.fd(), cause.getMessage());
        h.closeWith(cause);
    }

    /** Shutdown, run each iteration once requested: true when the reactor may stop. */
    private boolean shutdownStep() {
        if (!shutdownStarted) {
            shutdownStarted = true;
            cancelTimers();
            closeAll(null);
        }
        adoptOrphans(); // closes that found the door shut (none before it shuts)
        if (table.open() > 0 || !closing.isEmpty() || !tasks.isEmpty()) {
            return false;
        }
        shutDoor();
        // What came in before the door shut, and closes that found it shut, are finished first.
        return tasks.isEmpty() && orphans.isEmpty();
    }

    private void cancelTimers() {
        for (ScheduledTask t : timers) {
            t.cancel();
        }
        timers.clear();
    }

    /** Closes every handle in the table (a snapshot: closing changes it). */
    private void closeAll(Throwable cause) {
        List<Handle> open = new ArrayList<>();
        table.forEach(open::add);
        for (Handle h : open) {
            h.closeWith(cause);
        }
    }

    /**
     * After the loop ended, normally (nothing is left: a no-op) or by failing: shuts the door,
     * then runs what was accepted before it shut, closes every handle and finishes every close it
     * can, until nothing moves. After a failure there is no further batch, so nothing waits for
     * one. A handle with a reference still held is finished by its last release.
     */
    private void drainAfterStop(Throwable failure) {
        shutdownRequested = true;
        shutdownStarted = true;
        shutDoor();
        cancelTimers();
        Throwable cause = failure == null ? null : new ClosedHandleException("reactor " + index + " failed: " + failure);
        for (int pass = 0; pass < 1_000; pass++) { // bounded: a task may keep queueing tasks
            boolean progress = false;
            try {
                progress |= runAllTasks();
                progress |= adoptOrphans();
                closeAll(cause);
                progress |= finishCloses();
            } catch (Throwable t) {
                LOG.log(System.Logger.Level.WARNING, "reactor " + index + ": closing after a failure", t);
            }
            if (!progress && tasks.isEmpty() && orphans.isEmpty() && table.open() == 0) {
                return;
            }
        }
    }

    private boolean runAllTasks() {
        boolean any = false;
        Runnable t;
        while ((t = tasks.poll()) != null) {
            any = true;
            stats.increment(Counter.TASKS_RUN);
            try {
                t.run();
            } catch (Throwable e) {
                LOG.log(System.Logger.Level.WARNING, "task on reactor " + index + " threw", e);
            }
        }
        return any;
    }

    /**
     * Reactor thread, after {@link #exited} is set: the last chance to finish, here and with
     * onClose, what arrived in between. Later arrivals are finished by their own thread.
     */
    private void finishClosesAtExit() {
        adoptOrphans();
        finishCloses();
    }

    /** Asks the reactor to close every handle, then stop. Returns at once. */
    void shutdown() {
        shutdownRequested = true;
        if (inReactorThread()) {
            return;
        }
        try {
            execute(() -> {}); // wakes the reactor if it is parked
        } catch (RejectedExecutionException alreadyStopped) {
            // nothing to wake
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
