package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.Syscalls;

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
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.function.Supplier;

/**
 * One event loop: one platform thread that alone owns one epoll fd, one eventfd for wakeups, an
 * MPSC task queue, timers, the batch of pending interest changes and the handle table.
 *
 * <p><b>The loop.</b> Run tasks; run due timers; flush interest changes; advance the epoch and
 * finish the closes it allows; {@code epoll_wait} (timeout from the nearest timer, in
 * nanoseconds through {@code epoll_pwait2}); dispatch; advance the epoch and finish closes.
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
    private final MpscTaskQueue<Runnable> tasks = new MpscTaskQueue<>();
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
        if (inReactorThread()) {
            tasks.offer(task);
            return;
        }
        if ((int) PRODUCERS.getAndAdd(this, 1) < 0) {
            PRODUCERS.getAndAdd(this, -1);
            throw new RejectedExecutionException("reactor " + index + " is shut down");
        }
        try {
            tasks.offer(task);
            wakeup();
        } finally {
            PRODUCERS.getAndAdd(this, -1);
        }
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
     * @return the scheduled task, which can be cancelled from any thread
     * @throws IllegalArgumentException if {@code delay} is negative
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
        if (shutdownStarted || t.isCancelled()) {
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
     * @throws IllegalArgumentException on a negative fd or unknown interest bits
     * @throws ClosedHandleException if the reactor has shut down
     */
    public Handle register(int fd, int interest, EventHandler handler) {
        return register(fd, interest, handler, false);
    }

    /**
     * Same as {@link #register(int, int, EventHandler)} for an fd the caller created and never
     * handed out: no {@code dup} of it can exist, so its close skips the explicit
     * {@code EPOLL_CTL_DEL} (closing the fd removes it from epoll). Passing an fd that may be
     * shared would break the close guarantee for its duplicates.
     *
     * @param fd an open fd, created by the caller and never shared
     * @param interest {@link Interest} bits
     * @param handler called on the reactor thread when the fd is ready
     * @return the handle
     */
    public Handle registerUnshared(int fd, int interest, EventHandler handler) {
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
        if (inReactorThread()) {
            attach(h);
        } else {
            try {
                execute(() -> attach(h));
            } catch (RejectedExecutionException e) {
                throw new ClosedHandleException("reactor " + index + " is shut down");
            }
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

    void closeRequested(Handle h, Throwable cause) {
        if (inReactorThread()) {
            processClose(h, cause);
        } else {
            try {
                execute(() -> processClose(h, cause));
            } catch (RejectedExecutionException e) {
                // The thread is gone and dispatches nothing: the barrier has passed for good.
                finishOffThread(h);
            }
        }
    }

    void lastReferenceDropped(Handle h) {
        if (inReactorThread()) {
            return; // finishCloses() runs before the next wait
        }
        try {
            execute(this::finishCloses);
        } catch (RejectedExecutionException e) {
            finishOffThread(h);
        }
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
        if (h.closeProcessed) {
            return; // closed before it was ever attached
        }
        table.add(h);
        stats.increment(Counter.HANDLES_REGISTERED);
        stats.handlesOpen(table.open());
        batch.change(h, h.wantedInterest);
        if (shutdownStarted) { // slipped in while the reactor was closing everything
            h.closeWith(new ClosedHandleException("reactor " + index + " is shutting down"));
        }
    }

    /** Step 1 of the close protocol: DEL, mark the slot dead, wait for the barrier. */
    private void processClose(Handle h, Throwable cause) {
        if (h.closeProcessed) {
            return;
        }
        h.closeProcessed = true;
        h.closeCause = cause;
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
        h.delEpoch = (long) EPOCH.get(this);
        closing.add(h);
    }

    /** Step 3: for each closing handle past the barrier with no reference left, release the fd. */
    private void finishCloses() {
        if (closing.isEmpty()) {
            return;
        }
        long now = (long) EPOCH.get(this);
        for (int n = closing.size(); n > 0; n--) {
            Handle h = closing.poll();
            if (h.delEpoch < now && h.references() == 0) {
                release(h);
            } else {
                closing.add(h);
            }
        }
    }

    private void release(Handle h) {
        if (!h.tryMarkClosed()) {
            return;
        }
        int r = sys.close(h.fd());
        if (r < 0) {
            stats.increment(Counter.CLOSE_ERRORS);
            LOG.log(System.Logger.Level.WARNING, "close(fd {0}): {1}", h.fd(), Errno.name(-r));
        }
        stats.increment(Counter.CLOSES_COMPLETED);
        stats.recordCloseLatency(System.nanoTime() - h.closeRequestedNanos);
        notifyClosed(h);
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

    /** A close finished after the reactor stopped (a reference outlived it). */
    private static void finishOffThread(Handle h) {
        if (h.references() == 0 && h.tryMarkClosed()) {
            Syscalls.current().close(h.fd());
            notifyClosed(h);
        }
    }

    private void advanceEpoch() {
        EPOCH.setRelease(this, (long) EPOCH.get(this) + 1);
    }

    private void run() {
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
            } finally {
                closeLocals();
            }
        } catch (Throwable t) {
            LOG.log(System.Logger.Level.ERROR, "reactor " + index + " failed", t);
            terminated.completeExceptionally(t);
        } finally {
            shutDoor();
            Syscalls s = Syscalls.current();
            s.close(wakeFd);
            s.close(epfd);
            terminated.complete(null);
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
            advanceEpoch();
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

    private int epollWait(long timeoutNanos) throws SyscallException {
        while (true) {
            int n;
            if (pwait2) {
                n = sys.epollWaitNanos(epfd, events, maxEvents, timeoutNanos);
                if (n == -Errno.ENOSYS) { // Linux < 5.11: millisecond timeouts, rounded up
                    pwait2 = false;
                    continue;
                }
            } else {
                int millis = timeoutNanos < 0 ? -1 : (int) Math.min(Integer.MAX_VALUE, (timeoutNanos + 999_999) / 1_000_000);
                n = sys.epollWait(epfd, events, maxEvents, millis);
            }
            if (n >= 0) {
                return n;
            }
            if (n != -Errno.EINTR) { // EINTR: a signal arrived; nothing is lost, just wait again
                throw new SyscallException("epoll_wait", epfd, -n);
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
            timers.clear();
            List<Handle> open = new ArrayList<>();
            table.forEach(open::add);
            for (Handle h : open) {
                h.closeWith(null);
            }
        }
        if (table.open() > 0 || !closing.isEmpty() || !tasks.isEmpty()) {
            return false;
        }
        shutDoor();
        return tasks.isEmpty(); // else: run what came in before the door shut, then look again
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
