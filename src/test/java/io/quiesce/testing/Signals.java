package io.quiesce.testing;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;

/**
 * Signals as a fault source for tests: the calling thread's kernel tid ({@code gettid}) and a
 * signal sent to one thread of this process ({@code tgkill}), straight through the FFM linker.
 *
 * <p>{@link #SIGPIPE} is the signal to send: HotSpot installs a handler for it that ignores it (so
 * that a write to a closed pipe or socket returns EPIPE instead of killing the JVM), yet a handler
 * that runs is what makes a blocked {@code epoll_wait} return EINTR ({@code signal(7)}: epoll_wait
 * is never restarted, whatever {@code SA_RESTART} says). SIGQUIT would print a thread dump, most
 * other signals would end the process.
 */
public final class Signals {
    /** {@code SIGPIPE} on Linux (every architecture the JDK runs on). */
    public static final int SIGPIPE = 13;

    private static final MethodHandle GETTID;
    private static final MethodHandle TGKILL;
    private static final MethodHandle PTHREAD_SIGMASK;
    private static final MethodHandle SIGPENDING;
    private static final MethodHandle SIGTIMEDWAIT;
    /** glibc's {@code sigset_t}: 1024 bits. */
    private static final long SIGSET_BYTES = 128;
    /** {@code SIG_BLOCK} / {@code SIG_SETMASK} (the generic Linux values, x86 and arm64 alike). */
    private static final int SIG_BLOCK = 0;
    private static final int SIG_SETMASK = 2;

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        GETTID = linker.downcallHandle(libc.find("gettid").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT));
        TGKILL = linker.downcallHandle(libc.find("tgkill").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
        PTHREAD_SIGMASK = linker.downcallHandle(libc.find("pthread_sigmask").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
        SIGPENDING = linker.downcallHandle(libc.find("sigpending").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
        SIGTIMEDWAIT = linker.downcallHandle(libc.find("sigtimedwait").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS, ValueLayout.ADDRESS, ValueLayout.ADDRESS));
    }

    /**
     * {@code SIGPIPE} blocked on the calling thread, so that one raised for this thread (a
     * {@code send} without {@code MSG_NOSIGNAL} to a closed connection) stays pending where the
     * test can see it, instead of running HotSpot's handler, which ignores it. {@link #close()}
     * discards any that is pending and restores the thread's mask. Only for the thread that made it.
     */
    public static final class BlockedSigpipe implements AutoCloseable {
        private final Arena arena = Arena.ofConfined();
        private final MemorySegment set = arena.allocate(SIGSET_BYTES, 8);
        private final MemorySegment old = arena.allocate(SIGSET_BYTES, 8);
        private final MemorySegment scratch = arena.allocate(SIGSET_BYTES, 8);
        private final MemorySegment zero = arena.allocate(16, 8); // struct timespec {0, 0}

        private BlockedSigpipe() {
            addSigpipe(set);
            call(PTHREAD_SIGMASK, SIG_BLOCK, set, old);
        }

        /** {@return whether a {@code SIGPIPE} is pending for this thread or the process} */
        public boolean pending() {
            scratch.fill((byte) 0);
            try {
                if ((int) SIGPENDING.invokeExact(scratch) != 0) {
                    throw new IllegalStateException("sigpending failed");
                }
            } catch (Throwable t) {
                throw t instanceof RuntimeException r ? r : new IllegalStateException(t);
            }
            return (scratch.get(ValueLayout.JAVA_LONG, 0) & sigpipeBit()) != 0;
        }

        /** Takes one pending {@code SIGPIPE}, if any ({@code sigtimedwait} with a zero timeout). */
        public void discard() {
            try {
                int r = (int) SIGTIMEDWAIT.invokeExact(set, MemorySegment.NULL, zero);
                assert r == SIGPIPE || r == -1;
            } catch (Throwable t) {
                throw new IllegalStateException("sigtimedwait", t);
            }
        }

        @Override
        public void close() {
            while (pending()) {
                discard();
            }
            call(PTHREAD_SIGMASK, SIG_SETMASK, old, MemorySegment.NULL);
            arena.close();
        }

        private static long sigpipeBit() {
            return 1L << (SIGPIPE - 1);
        }

        private static void addSigpipe(MemorySegment s) {
            s.set(ValueLayout.JAVA_LONG, 0, sigpipeBit());
        }

        private static void call(MethodHandle h, int how, MemorySegment a, MemorySegment b) {
            int r;
            try {
                r = (int) h.invokeExact(how, a, b);
            } catch (Throwable t) {
                throw new IllegalStateException("pthread_sigmask", t);
            }
            if (r != 0) {
                throw new IllegalStateException("pthread_sigmask: error " + r);
            }
        }
    }

    /** {@return SIGPIPE blocked on the calling thread until the result is closed} */
    public static BlockedSigpipe blockSigpipe() {
        return new BlockedSigpipe();
    }

    private Signals() {}

    /** {@return the kernel thread id of the calling thread} */
    public static int gettid() {
        try {
            return (int) GETTID.invokeExact();
        } catch (Throwable t) {
            throw new IllegalStateException("gettid", t);
        }
    }

    /**
     * Sends {@code signal} to thread {@code tid} of this process.
     *
     * @param tid a kernel thread id from {@link #gettid()}
     * @param signal the signal number
     * @return true if sent; false if the thread no longer exists (ESRCH)
     */
    public static boolean tgkill(int tid, int signal) {
        int r;
        try {
            r = (int) TGKILL.invokeExact((int) ProcessHandle.current().pid(), tid, signal);
        } catch (Throwable t) {
            throw new IllegalStateException("tgkill", t);
        }
        return r == 0; // -1 only with ESRCH here: the pid is ours and the signal valid
    }
}
