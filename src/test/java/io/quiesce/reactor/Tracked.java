package io.quiesce.reactor;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.random.RandomGenerator;

/**
 * One handle of the random schedule, and its handler: checks every callback against the close
 * protocol's promises and takes the random actions a handler may take (close itself or another
 * handle, change its interest, re-arm, chain a close from {@code onClose}).
 *
 * <p>Identity: the kernel object behind the fd number, read at open time from
 * {@code /proc/self/fdinfo/N} (see {@link #identity}). While the handle is open (or a reference is
 * held) the number must still name that object; pipes and sockets get inode numbers that are not
 * handed out again soon, so once their close completed the number must no longer name it.
 * (eventfd ids are reused at once, so for eventfds only the first check is made.)
 */
final class Tracked implements EventHandler {
    enum Kind { EVENTFD, PIPE_READ, PIPE_WRITE, SOCKET }

    final RandomSchedule run;
    final long id;
    final long pairId;
    final Kind kind;
    final int fd;
    /** What {@code /proc/self/fd/N} linked to at open time ({@code pipe:[ino]}, {@code socket:[ino]}, ...). */
    final String link;
    final String identity;
    final int interest;
    /** The other end of a pipe or socketpair, or null. */
    volatile Tracked partner;
    volatile Handle handle;
    /** Reactor thread only (one tracked handle lives on one reactor). */
    private final RandomGenerator rnd;
    private final boolean chainOnClose;
    private final int actOnEventOneIn;
    final AtomicInteger onCloses = new AtomicInteger();
    /** References on other handles that this handle's {@code onClose} drops. */
    final ConcurrentLinkedQueue<HeldRef> parked = new ConcurrentLinkedQueue<>();

    /** A reference taken with {@code tryRetain} and dropped exactly once, by whoever gets there first. */
    static final class HeldRef {
        final Tracked on;
        private final AtomicBoolean dropped = new AtomicBoolean();

        HeldRef(Tracked on) {
            this.on = on;
        }

        void release() {
            if (dropped.compareAndSet(false, true)) {
                on.handle.release();
            }
        }

        boolean isDropped() {
            return dropped.get();
        }
    }

    Tracked(RandomSchedule run, long id, long pairId, Kind kind, int fd, int interest, RandomGenerator rnd) {
        this.run = run;
        this.id = id;
        this.pairId = pairId;
        this.kind = kind;
        this.fd = fd;
        this.link = link(fd);
        this.identity = identity(fd);
        this.interest = interest;
        this.rnd = rnd;
        this.chainOnClose = rnd.nextInt(4) == 0;
        this.actOnEventOneIn = 4 + rnd.nextInt(60);
    }

    /**
     * {@return what {@code fd} names now, or null if it is not open}: the file's mount and inode,
     * its access mode (both ends of a pipe are one inode) and an eventfd's id, all from one read of
     * {@code /proc/self/fdinfo/N}, which the kernel prints from the one file the number names at
     * that moment. Two reads (the {@code /proc/self/fd/N} link, then the fdinfo flags) could see
     * two files: a number just closed is the lowest free one, so a dup of this pipe's write end
     * may take it between the reads and be closed again, and the read end of any pipe take it
     * next; the link of the first and the access mode of the second then make this pipe's read
     * end on a number that never named it again.
     */
    static String identity(int fd) {
        String mount = null;
        String inode = null;
        String eventfdId = "";
        int accessMode = -1;
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/fdinfo/" + fd))) {
                int colon = line.indexOf(':');
                String value = colon < 0 ? "" : line.substring(colon + 1).trim();
                switch (colon < 0 ? "" : line.substring(0, colon)) {
                    case "flags" -> accessMode = Integer.parseInt(value, 8) & 3; // O_ACCMODE
                    case "mnt_id" -> mount = value;
                    case "ino" -> inode = value;
                    case "eventfd-id" -> eventfdId = " eventfd-id=" + value;
                    default -> { }
                }
            }
        } catch (IOException closed) {
            return null;
        }
        if (inode == null) {
            throw new IllegalStateException("/proc/self/fdinfo/" + fd + " has no ino: line (Linux 5.14+ prints it)");
        }
        return "mnt=" + mount + " ino=" + inode + " mode=" + accessMode + eventfdId;
    }

    /** {@return the {@code /proc/self/fd/N} link of {@code fd} (null if not open)}, for messages and the kind of file */
    static String link(int fd) {
        try {
            return Files.readSymbolicLink(Path.of("/proc/self/fd/" + fd)).toString();
        } catch (IOException closed) {
            return null;
        }
    }

    /** {@return whether the identity cannot be another file's soon: pipe and socket inodes} */
    boolean uniqueIdentity() {
        return identity != null && link != null && (link.startsWith("pipe:") || link.startsWith("socket:"));
    }

    /** {@return whether the fd number still names this handle's file} */
    boolean stillNamesMyFile() {
        return identity != null && identity.equals(identity(fd));
    }

    @Override
    public void onEvent(Handle h, int ready) {
        run.eventsSeen.increment();
        if (!h.reactor().inReactorThread()) {
            run.failure("onEvent of " + this + " off its reactor thread: " + Thread.currentThread());
        }
        if (h.registration.closeProcessed()) {
            run.staleEvents.increment();
        }
        if (onCloses.get() > 0 || h.closeFuture().isDone()) {
            run.callbacksAfterClose.increment();
        }
        Handle mine = handle;
        if ((mine != null && mine != h) || h.fd() != fd || (identity != null && !stillNamesMyFile())) {
            run.wrongHandle.increment(); // the event reached a number that now names another file
            run.failure("event for " + this + " while fd " + fd + " names " + identity(fd));
        }
        boolean ended = (ready & (Interest.HANGUP | Interest.ERROR)) != 0;
        if ((ready & Interest.READ) != 0) {
            ended |= drain();
        }
        if (ended) { // level-triggered, it would fire again and again: close in onEvent
            h.close();
            return;
        }
        if ((interest & Interest.ONESHOT) != 0 && rnd.nextInt(8) != 0) {
            openOnly(h::rearm);
        }
        if (rnd.nextInt(actOnEventOneIn) == 0) {
            switch (rnd.nextInt(5)) {
                case 0 -> h.close();
                case 1 -> run.closeRandom(rnd);          // another handle, maybe on the other reactor
                case 2 -> {                              // a change and a close in one iteration
                    openOnly(() -> h.interest(interest));
                    h.close();
                }
                case 3 -> openOnly(() -> h.interest(interest));
                default -> {
                    Tracked other = run.randomLive(rnd);
                    if (other != null && other.handle != null && other.handle.tryRetain()) {
                        new HeldRef(other).release(); // a release on the reactor thread
                    }
                }
            }
        }
    }

    /** Runs {@code change}; a handle another thread closed meanwhile refuses it, as documented. */
    static void openOnly(Runnable change) {
        try {
            change.run();
        } catch (ClosedHandleException closedMeanwhile) {
            // documented: interest()/rearm() on a closing handle
        }
    }

    /** Reads until EAGAIN; checks every 8-byte word is this pair's id. {@return whether EOF was read} */
    private boolean drain() {
        Syscalls sys = Syscalls.current();
        if (kind == Kind.EVENTFD) {
            TestSyscalls.current().eventfdRead(fd);
            return false;
        }
        MemorySegment buf = READ_BUFFER.get();
        while (true) {
            long n = kind == Kind.SOCKET ? TestSyscalls.current().recv(fd, buf, buf.byteSize(), 0) : sys.read(fd, buf, buf.byteSize());
            if (n == 0) {
                return true;
            }
            if (n < 0) {
                return false; // EAGAIN: drained
            }
            for (long off = 0; off + 8 <= n; off += 8) {
                if (buf.get(ValueLayout.JAVA_LONG, off) != pairId) {
                    run.wrongHandle.increment();
                    run.failure(this + " read id " + buf.get(ValueLayout.JAVA_LONG, off));
                }
            }
        }
    }

    @Override
    public void onClose(Handle h, Throwable cause) {
        if (!h.reactor().inReactorThread()) {
            run.failure("onClose of " + this + " off its reactor thread: " + Thread.currentThread());
        }
        if (onCloses.incrementAndGet() > 1) {
            run.doubleCloses.increment();
        }
        if (uniqueIdentity() && stillNamesMyFile()) {
            run.leakedFds.increment();
            run.failure("onClose of " + this + " but fd " + fd + " still names " + identity);
        }
        if (cause != null && !(cause instanceof ClosedHandleException)) {
            run.failure("closed with an unexpected cause: " + this + ": " + cause);
        }
        HeldRef r;
        while ((r = parked.poll()) != null) {
            r.release(); // maybe the last reference of a handle closing meanwhile
        }
        if (chainOnClose) {
            Tracked p = partner;
            if (p != null && p.handle != null && rnd.nextBoolean()) {
                p.handle.close(); // the proxy pattern: A's onClose closes B
            } else {
                run.closeRandom(rnd);
            }
        }
    }

    @Override
    public String toString() {
        Handle h = handle;
        return "Tracked[" + id + " " + kind + " fd=" + fd + " " + link + " " + identity + " interest=" + Interest.toString(interest)
                + (h == null ? "" : " " + h) + "]";
    }

    private static final ThreadLocal<MemorySegment> READ_BUFFER =
            ThreadLocal.withInitial(() -> Arena.ofAuto().allocate(4096, 8));
}
