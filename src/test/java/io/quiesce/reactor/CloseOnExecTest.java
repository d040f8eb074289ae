package io.quiesce.reactor;

import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;
import io.quiesce.testing.FdSnapshot;
import io.quiesce.testing.NoFdLeaks;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.extension.ExtendWith;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * {@code epoll-semantics-ofd-dup-fork.txt}: every fd Quiesce creates is close-on-exec, so a child
 * process inherits none. The child is started with {@code posix_spawn}, which (unlike
 * {@link ProcessBuilder}) leaves every fd without close-on-exec open across the exec; a control fd
 * with the flag cleared proves the child would see a leak.
 */
@ExtendWith(NoFdLeaks.class)
class CloseOnExecTest {
    @Test
    void aChildProcessInheritsNoFdQuiesceCreated() throws Exception {
        Syscalls sys = Syscalls.current();
        FdSnapshot before = FdSnapshot.take();
        try (var group = ReactorGroup.start(ReactorGroup.Options.defaults().withThreads(2));
             Arena arena = Arena.ofConfined()) {
            int listener = sys.socket(Syscalls.AF_INET, Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0);
            MemorySegment addr = arena.allocate(SockAddr.MAX_SIZE);
            int len = SockAddr.encode(new InetSocketAddress(InetAddress.getLoopbackAddress(), 0), addr);
            assertEquals(0, sys.bind(listener, addr, len));
            assertEquals(0, sys.listen(listener, 8));
            Handle h = group.next().register(listener, Interest.READ, (x, r) -> {});
            Handle e = group.next().register(sys.eventfd(0, Syscalls.EFD_NONBLOCK), Interest.READ, (x, r) -> {});
            ReactorTesting.roundTrips(group.reactor(0), 1);
            ReactorTesting.roundTrips(group.reactor(1), 1);

            var created = FdSnapshot.take().newSince(before);
            Set<Integer> ours = created.keySet();
            assertTrue(ours.size() >= 6, "2 epolls, 2 eventfds, a listener and an eventfd: " + ours);

            int control = TestSyscalls.current().dup(h.fd());
            assertEquals(0, TestSyscalls.current().fcntl(control, TestSyscalls.F_SETFD, 0), "clear FD_CLOEXEC on the control");
            try {
                Set<Integer> childFds = fdsOfAChild(arena);
                assertTrue(childFds.contains(control), "the control proves inheritance is visible: " + childFds);
                Set<Integer> leaked = new TreeSet<>(ours);
                leaked.retainAll(childFds);
                assertEquals(Set.of(), leaked, () -> "fds Quiesce created that the child inherited; control " + control + ", created " + created);
            } finally {
                sys.close(control);
            }
            h.close(Duration.ofSeconds(10));
            e.close(Duration.ofSeconds(10));
        }
    }

    /** {@return whether the process is blocked in nanosleep or clock_nanosleep (x86_64 numbers)} */
    private static boolean sleeping(int pid) {
        try {
            String sys = Files.readString(Path.of("/proc/" + pid + "/syscall")).trim();
            return sys.startsWith("35 ") || sys.startsWith("230 ");
        } catch (java.io.IOException e) {
            return false;
        }
    }

    /**
     * Spawns {@code /bin/sleep} and lists its fds from {@code /proc/<pid>/fd} once it sleeps.
     * posix_spawn returns as soon as the child's new memory map is in place, which is before the
     * kernel closes its close-on-exec fds; so the list is read only when {@code /proc/<pid>/syscall}
     * shows the child blocked in its sleep, long after exec finished. Sleep opens nothing of its own
     * that stays open, so the list is what it inherited.
     */
    private static Set<Integer> fdsOfAChild(Arena arena) throws Exception {
        MemorySegment argv = arena.allocate(ValueLayout.ADDRESS, 3);
        argv.setAtIndex(ValueLayout.ADDRESS, 0, arena.allocateFrom("sleep"));
        argv.setAtIndex(ValueLayout.ADDRESS, 1, arena.allocateFrom("60"));
        argv.setAtIndex(ValueLayout.ADDRESS, 2, MemorySegment.NULL);
        MemorySegment envp = arena.allocate(ValueLayout.ADDRESS, 1);
        envp.setAtIndex(ValueLayout.ADDRESS, 0, MemorySegment.NULL);
        MemorySegment pidOut = arena.allocate(ValueLayout.JAVA_INT);
        Syscalls sys = Syscalls.current();
        int r = TestSyscalls.current().posixSpawn(pidOut, arena.allocateFrom("/bin/sleep"), argv, envp);
        assertEquals(0, r, () -> "posix_spawn: " + Errno.name(-r));
        int pid = pidOut.get(ValueLayout.JAVA_INT, 0);
        try {
            ReactorTesting.eventually("the child sleeps", () -> sleeping(pid));
            Set<Integer> fds = new TreeSet<>();
            try (var list = Files.list(Path.of("/proc/" + pid + "/fd"))) {
                list.forEach(p -> fds.add(Integer.parseInt(p.getFileName().toString())));
            }
            return fds;
        } finally {
            ProcessHandle.of(pid).ifPresent(ProcessHandle::destroyForcibly);
            assertEquals(pid, TestSyscalls.current().waitpid(pid, arena.allocate(ValueLayout.JAVA_INT)));
        }
    }
}
