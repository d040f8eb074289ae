package io.quiesce.uring;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;

import static io.quiesce.sys.raw.Syscalls.*;
import static org.junit.jupiter.api.Assertions.*;

/**
 * Signals are normal: a thread waiting in {@code io_uring_enter} that takes signals (as under a
 * profiler) keeps waiting, with the timeout recomputed from its deadline, and returns the event
 * that ends the wait — never {@code -EINTR}. The signal is {@code SIGPIPE} sent to the one
 * thread with {@code tgkill}: the JVM installs a handler for it that does nothing, so it
 * interrupts the syscall and is otherwise harmless.
 */
@ExtendWith(NoFdLeaks.class)
class EpollBatchSignalTest {
    private static final MethodHandle SYSCALL3 = Linker.nativeLinker().downcallHandle(
            LinuxH.syscall.address(), FunctionDescriptor.of(ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG, ValueLayout.JAVA_LONG,
                    ValueLayout.JAVA_LONG),
            Linker.Option.firstVariadicArg(1));

    private static long syscall(long nr, long a, long b, long c) throws Throwable {
        return (long) SYSCALL3.invokeExact(nr, a, b, c);
    }

    /** Polls {@code /proc/self/task/<tid>/syscall} until the thread sits in io_uring_enter (bounded). */
    private static void awaitInIoUringEnter(long tid) throws Exception {
        var path = Path.of("/proc/self/task/" + tid + "/syscall");
        String want = LinuxH.SYS_io_uring_enter() + " ";
        for (int i = 0; i < 10_000; i++) {
            if (Files.readString(path).startsWith(want)) {
                return;
            }
            Thread.sleep(1);
        }
        fail("thread " + tid + " never entered io_uring_enter");
    }

    record Outcome(int events, long token, long enters) {}

    @ParameterizedTest
    @EnumSource(EpollBatch.TimeoutMode.class)
    void signalsDuringTheWaitAreRetriedAndTheEventStillEndsIt(EpollBatch.TimeoutMode mode)
            throws Throwable {
        RingTest.assumeIoUringEnabled();
        var sys = Syscalls.current();
        int efd = sys.eventfd(0, EFD_NONBLOCK);
        var tid = new CompletableFuture<Long>();
        var outcome = new CompletableFuture<Outcome>();
        // The ring is SINGLE_ISSUER: the waiting thread creates it and alone enters it.
        var waiter = Thread.ofPlatform().start(() -> {
            try (var arena = Arena.ofConfined()) {
                var s = new Syscalls(arena);
                int ep = s.epollCreate();
                var events = arena.allocate(EPOLL_EVENT_SIZE * 4, 8);
                try (var batch = EpollBatch.open(ep, events, 4, arena,
                        EpollBatch.Options.defaults().withTimeoutMode(mode))) {
                    batch.queueCtl(EPOLL_CTL_ADD, efd, EPOLLIN, 0x5151L);
                    tid.complete(syscall(LinuxH.SYS_gettid(), 0, 0, 0));
                    int n = batch.submitAndWait(TimeUnit.SECONDS.toNanos(30));
                    outcome.complete(new Outcome(n,
                            events.get(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET), batch.enters()));
                } finally {
                    s.close(ep);
                }
            } catch (Throwable t) {
                tid.completeExceptionally(t);
                outcome.completeExceptionally(t);
            }
        });
        long t = tid.get(10, TimeUnit.SECONDS);
        for (int i = 0; i < 5; i++) { // five signals, each sent while the thread is in the enter
            awaitInIoUringEnter(t);
            assertEquals(0, syscall(LinuxH.SYS_tgkill(), TestSyscalls.pid(), t, LinuxH.SIGPIPE()));
        }
        awaitInIoUringEnter(t);
        assertFalse(outcome.isDone(), "the signals did not end the wait");
        assertEquals(8, sys.eventfdWrite(efd, 1));
        var o = outcome.get(30, TimeUnit.SECONDS);
        waiter.join();
        sys.close(efd);
        assertEquals(1, o.events(), "the event, not -EINTR");
        assertEquals(0x5151L, o.token());
        assertTrue(o.enters() > 1, "at least one enter was interrupted and retried: " + o.enters());
    }
}
