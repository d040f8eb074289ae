package io.quiesce.reactor;

import io.quiesce.reactor.Tracked.HeldRef;
import io.quiesce.reactor.Tracked.Kind;
import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.RejectedExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.locks.LockSupport;
import java.util.random.RandomGenerator.SplittableGenerator;

/**
 * One thread of the {@link RandomSchedule}: a seeded sequence of operations on the shared slots.
 * Every exception the API documents for a closed handle or a shut-down reactor
 * ({@link ClosedHandleException}, {@link RejectedExecutionException}) is expected at any moment
 * once the group closes; anything else is a failure of the round.
 */
final class ScheduleWorker {
    private static final int MAX_DUPS = 6;

    private record Dup(int fd, Kind kind, long pairId, String identity) {}

    private final RandomSchedule run;
    private final int index;
    private final SplittableGenerator rnd;
    private final int groupCloseAt;
    private final int groupCloseHow;
    private final long deadlineNanos;
    private final List<Dup> dups = new ArrayList<>();
    private final List<ScheduledTask> timers = new ArrayList<>();
    private Syscalls sys;
    private MemorySegment buf;

    ScheduleWorker(RandomSchedule run, int index, SplittableGenerator rnd, int groupCloseAt, int groupCloseHow, long deadlineNanos) {
        this.run = run;
        this.index = index;
        this.rnd = rnd;
        this.groupCloseAt = groupCloseAt;
        this.groupCloseHow = groupCloseHow;
        this.deadlineNanos = deadlineNanos;
    }

    void run(CountDownLatch start) {
        try (Arena arena = Arena.ofConfined()) {
            sys = new Syscalls(arena);
            buf = arena.allocate(8, 8);
            start.await();
            for (int op = 0; op < run.config.opsPerWorker() && System.nanoTime() - deadlineNanos < 0; op++) {
                if (op == groupCloseAt) {
                    closeGroup();
                }
                step();
            }
            // The dups stay open: the round's end checks that no closed handle's registration
            // outlived its close in the kernel, which only a dup still open can show.
        } catch (Throwable t) {
            run.failure("worker " + index + " threw " + t + " " + List.of(t.getStackTrace()).subList(0, Math.min(8, t.getStackTrace().length)));
        }
    }

    private void step() throws Exception {
        int w = rnd.nextInt(100);
        try {
            if (w < 10) open(Kind.EVENTFD);
            else if (w < 16) open(Kind.PIPE_READ);
            else if (w < 22) open(Kind.SOCKET);
            else if (w < 25) openOnReactor();
            else if (w < 38) closeOne();
            else if (w < 56) poke();
            else if (w < 60) dup();
            else if (w < 63) writeDup();
            else if (w < 66) closeDup();
            else if (w < 70) timerClose();
            else if (w < 74) timerRef();
            else if (w < 77) cancelTimer();
            else if (w < 81) handOff();
            else if (w < 86) parkAndClose();
            else if (w < 91) interest(false);
            else if (w < 95) interest(true);
            else LockSupport.parkNanos(rnd.nextInt(30_000));
        } catch (RejectedExecutionException | ClosedHandleException shutDown) {
            if (!run.groupClosing.get()) {
                run.failure("worker " + index + ": " + shutDown + " while the group was running");
            }
        }
    }

    // ---------------------------------------------------------------- opening

    private int interestFor(Kind k) {
        boolean level = rnd.nextInt(3) == 0;
        boolean oneshot = !level && rnd.nextInt(4) == 0;
        int i = switch (k) {
            case EVENTFD, PIPE_READ -> Interest.READ;
            case PIPE_WRITE -> rnd.nextBoolean() ? 0 : Interest.WRITE;
            case SOCKET -> Interest.READ | Interest.PEER_CLOSED;
        };
        if (k == Kind.PIPE_WRITE) {
            return i; // edge-triggered only: a level-triggered writable pipe would fire for ever
        }
        if (!level && rnd.nextInt(3) == 0) {
            i |= Interest.WRITE;
        }
        return i | (level ? Interest.LEVEL : 0) | (oneshot ? Interest.ONESHOT : 0);
    }

    private void open(Kind kind) throws Exception {
        int[] fds = new int[2];
        int r = switch (kind) {
            case EVENTFD -> fds[0] = sys.eventfd(0, Syscalls.EFD_NONBLOCK);
            case PIPE_READ -> TestSyscalls.current().pipe(fds, TestSyscalls.O_NONBLOCK);
            default -> TestSyscalls.current().socketpair(TestSyscalls.AF_UNIX, Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0, fds);
        };
        if (r < 0) {
            return; // EMFILE under a burst: skip
        }
        long pairId = run.ids.getAndIncrement();
        Reactor reactor = run.group.reactor(rnd.nextInt(2));
        if (kind == Kind.EVENTFD) {
            register(reactor, new Tracked(run, pairId, pairId, kind, fds[0], interestFor(kind), rnd.split()));
            return;
        }
        Kind second = kind == Kind.PIPE_READ ? Kind.PIPE_WRITE : Kind.SOCKET;
        var a = new Tracked(run, run.ids.getAndIncrement(), pairId, kind, fds[0], interestFor(kind), rnd.split());
        var b = new Tracked(run, run.ids.getAndIncrement(), pairId, second, fds[1], interestFor(second), rnd.split());
        a.partner = b;
        b.partner = a;
        boolean first = register(reactor, a);
        if (!register(rnd.nextBoolean() ? reactor : run.group.reactor(rnd.nextInt(2)), b) && first) {
            a.handle.close(); // half a pair is no use
        }
    }

    /** Registers {@code t}; its fd is closed here if refused. {@return whether a handle now owns it} */
    private boolean register(Reactor reactor, Tracked t) throws Exception {
        try {
            t.handle = reactor.register(t.fd, t.interest, t);
        } catch (ClosedHandleException refused) {
            closeOwn(t.fd, "refused registration");
            if (!run.groupClosing.get()) {
                run.failure("register refused with the group running: " + refused);
            }
            return false;
        } catch (IllegalArgumentException e) { // a fresh number "already registered": someone closed an fd twice
            run.doubleCloses.increment();
            run.failure("register of a fresh fd refused: " + e.getMessage());
            closeOwn(t.fd, "refused registration");
            return false;
        }
        place(t);
        return true;
    }

    private void place(Tracked t) throws Exception {
        run.all.add(t);
        Tracked old = run.slots.getAndSet(rnd.nextInt(run.slots.length()), t);
        if (old != null) {
            close(old, rnd.nextInt(3));
        }
    }

    /** An eventfd opened and registered by a task on the reactor thread itself. */
    private void openOnReactor() {
        Reactor reactor = run.group.reactor(rnd.nextInt(2));
        long id = run.ids.getAndIncrement();
        int interest = interestFor(Kind.EVENTFD);
        var split = rnd.split();
        int slot = rnd.nextInt(run.slots.length());
        reactor.execute(() -> {
            int fd = Syscalls.current().eventfd(0, Syscalls.EFD_NONBLOCK);
            if (fd < 0) {
                return;
            }
            var t = new Tracked(run, id, id, Kind.EVENTFD, fd, interest, split);
            try {
                t.handle = reactor.register(fd, interest, t);
            } catch (ClosedHandleException shuttingDown) {
                Syscalls.current().close(fd);
                return;
            } catch (IllegalArgumentException e) {
                run.doubleCloses.increment();
                run.failure("register of a fresh fd refused on the reactor: " + e.getMessage());
                Syscalls.current().close(fd);
                return;
            }
            run.all.add(t);
            Tracked old = run.slots.getAndSet(slot, t);
            if (old != null) {
                old.handle.close();
            }
        });
    }

    // ---------------------------------------------------------------- closing

    private void closeOne() throws Exception {
        Tracked t = run.randomLive(rnd);
        if (t != null) {
            close(t, rnd.nextInt(5));
        }
    }

    private void close(Tracked t, int how) throws Exception {
        switch (how) {
            case 0 -> t.handle.close();
            case 1 -> t.handle.closeAsync();
            case 2 -> {
                try {
                    t.handle.close(Duration.ofSeconds(20)); // blocking, from a foreign thread
                } catch (TimeoutException e) {
                    run.failure("blocking close timed out: " + t);
                }
            }
            case 3 -> run.group.reactor(rnd.nextInt(2)).execute(t.handle::close); // from a reactor thread
            default -> {
                ScheduledTask timer = run.group.reactor(rnd.nextInt(2)).schedule(rnd.nextInt(3), TimeUnit.MILLISECONDS, t.handle::close);
                remember(timer);
            }
        }
    }

    private void closeGroup() throws Exception {
        run.groupClosing.set(true);
        Reactor r = run.group.reactor(rnd.nextInt(2));
        switch (groupCloseHow) {
            case 0 -> run.group.closeAsync();
            case 1 -> r.execute(run.group::close); // on a reactor thread: asynchronous
            case 2 -> r.schedule(rnd.nextInt(5), TimeUnit.MILLISECONDS, run.group::close);
            default -> {
                try {
                    run.group.close(Duration.ofSeconds(20));
                } catch (TimeoutException e) {
                    run.failure("group close from a worker: " + e.getMessage());
                }
            }
        }
    }

    // ---------------------------------------------------------------- references

    /** A reference, a real syscall on the fd while it is held, and the release. */
    private void poke() {
        Tracked t = run.randomLive(rnd);
        if (t == null) {
            return;
        }
        if (t.kind == Kind.PIPE_READ && t.partner != null) {
            t = t.partner; // write into the pipe, not into its read end
        }
        Handle h = t.handle;
        if (h == null || !h.tryRetain()) { // (a partner whose registration was refused has none)
            return;
        }
        try {
            if (t.identity != null && !t.stillNamesMyFile()) {
                run.wrongHandle.increment();
                run.failure("a reference is held on " + t + " but fd " + t.fd + " names " + Tracked.identity(t.fd));
            }
            long r = write(t.fd, t.kind, t.pairId);
            if (r < 0 && r != -Errno.EAGAIN && r != -Errno.EPIPE) {
                run.failure("syscall on a held fd failed: " + Errno.name((int) -r) + " " + t);
            }
        } finally {
            h.release();
        }
    }

    private long write(int fd, Kind kind, long pairId) {
        buf.set(ValueLayout.JAVA_LONG, 0, pairId);
        return switch (kind) {
            case EVENTFD -> sys.eventfdWrite(fd, 1);
            case PIPE_WRITE -> sys.write(fd, buf, 8); // EPIPE once the reader closed (SIGPIPE is ignored by the JVM)
            case SOCKET -> sys.send(fd, buf, 8, Syscalls.MSG_NOSIGNAL | TestSyscalls.MSG_DONTWAIT);
            case PIPE_READ -> 0;
        };
    }

    /** A reference dropped by a task on a reactor thread (maybe the last one, maybe the other reactor). */
    private void handOff() {
        Tracked t = run.randomLive(rnd);
        if (t == null || !t.handle.tryRetain()) {
            return;
        }
        var ref = new HeldRef(t);
        try {
            run.group.reactor(rnd.nextInt(2)).execute(ref::release);
        } catch (RejectedExecutionException shutDown) {
            ref.release();
            throw shutDown;
        }
    }

    /** A reference dropped by a timer; cancelled timers' references are dropped by the janitor. */
    private void timerRef() {
        Tracked t = run.randomLive(rnd);
        if (t == null || !t.handle.tryRetain()) {
            return;
        }
        var ref = new HeldRef(t);
        try {
            ScheduledTask timer = run.group.reactor(rnd.nextInt(2)).schedule(rnd.nextInt(4), TimeUnit.MILLISECONDS, ref::release);
            run.promiseByTimer(ref, timer);
            remember(timer);
        } catch (RejectedExecutionException shutDown) {
            ref.release();
            throw shutDown;
        }
    }

    /**
     * A reference on {@code b} parked in {@code a}'s onClose, then {@code a} closed (and maybe
     * {@code b}): {@code b}'s last reference is dropped on {@code a}'s reactor thread inside an
     * onClose. Parked only from a lower id to a higher one, so no two onCloses wait on each other.
     */
    private void parkAndClose() throws Exception {
        Tracked a = run.randomLive(rnd);
        Tracked b = run.randomLive(rnd);
        if (a == null || b == null || a.id >= b.id || !b.handle.tryRetain()) {
            return;
        }
        var ref = new HeldRef(b);
        a.parked.add(ref);
        run.promiseByOnClose(ref, a);
        if (rnd.nextBoolean()) {
            b.handle.close();
        }
        close(a, rnd.nextInt(2));
    }

    // ---------------------------------------------------------------- dups, timers, interest

    /** A user dup of {@code fd()} taken while holding a reference; closed later, or at the end. */
    private void dup() {
        Tracked t = run.randomLive(rnd);
        if (t == null || dups.size() >= MAX_DUPS || !t.handle.tryRetain()) {
            return;
        }
        try {
            int d = TestSyscalls.current().fcntl(t.fd, TestSyscalls.F_DUPFD_CLOEXEC, 0);
            if (d >= 0) {
                dups.add(new Dup(d, t.kind, t.pairId, t.identity));
            }
        } finally {
            t.handle.release();
        }
    }

    /** Makes the dup'd file ready: were its closed handle still registered, events would follow. */
    private void writeDup() {
        if (!dups.isEmpty()) {
            Dup d = dups.get(rnd.nextInt(dups.size()));
            write(d.fd(), d.kind(), d.pairId());
        }
    }

    private void closeDup() {
        if (!dups.isEmpty()) {
            Dup d = dups.remove(rnd.nextInt(dups.size()));
            closeOwn(d.fd(), "dup of " + d.identity());
        }
    }

    /** Closes every dup still held; called by the round once its checks of the kernel are done. */
    void closeDups() {
        while (!dups.isEmpty()) {
            closeDup();
        }
    }

    private void closeOwn(int fd, String what) {
        int r = Syscalls.current().close(fd); // also on the round's thread, after this worker ended
        if (r < 0) { // EBADF: the library closed a number that was ours
            run.doubleCloses.increment();
            run.failure("close of our own fd " + fd + " (" + what + "): " + Errno.name(-r));
        }
    }

    private void timerClose() {
        Tracked t = run.randomLive(rnd);
        if (t != null) {
            var split = rnd.split(); // used by the timer alone, on its reactor thread
            remember(run.group.reactor(rnd.nextInt(2)).schedule(rnd.nextInt(4), TimeUnit.MILLISECONDS, () -> {
                t.handle.close();
                run.closeRandom(split);
            }));
        }
    }

    private void cancelTimer() {
        if (!timers.isEmpty()) {
            ScheduledTask timer = timers.remove(rnd.nextInt(timers.size()));
            timer.cancel(); // a timer holding a reference: the janitor sees it cancelled and drops it
        }
    }

    private void remember(ScheduledTask timer) {
        if (timers.size() > 64) {
            timers.removeFirst();
        }
        timers.add(timer);
    }

    /** An interest change from this thread, and with {@code thenClose} a close right behind it. */
    private void interest(boolean thenClose) {
        Tracked t = run.randomLive(rnd);
        if (t == null) {
            return;
        }
        try {
            Tracked.openOnly(() -> t.handle.interest(t.interest));
        } catch (RejectedExecutionException e) {
            // Not in interest()'s documentation (only ClosedHandleException is): counted apart.
            run.undocumentedRejections.increment();
        }
        if (thenClose) {
            t.handle.close();
        }
    }
}
