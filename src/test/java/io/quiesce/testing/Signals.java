package io.quiesce.testing;

import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
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

    static {
        Linker linker = Linker.nativeLinker();
        var libc = linker.defaultLookup();
        GETTID = linker.downcallHandle(libc.find("gettid").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT));
        TGKILL = linker.downcallHandle(libc.find("tgkill").orElseThrow(),
                FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
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
