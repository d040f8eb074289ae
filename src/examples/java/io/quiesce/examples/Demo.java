package io.quiesce.examples;

import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.raw.TestSyscalls;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static io.quiesce.sys.raw.Syscalls.*;

/**
 * {@code make run}: shows the syscall layer working. Creates an epoll and an eventfd, registers
 * the eventfd with a token, wakes it from another thread and reports what epoll_wait saw.
 */
public final class Demo {
    public static void main(String[] args) throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Syscalls sys = new Syscalls(arena);
            int ep = Errno.check(sys.epollCreate(), "epoll_create1", -1);
            int efd = Errno.check(sys.eventfd(0, EFD_NONBLOCK), "eventfd", -1);
            long token = 0xC0FFEE_0000_0001L;
            Errno.check(sys.epollCtl(ep, EPOLL_CTL_ADD, efd, EPOLLIN | EPOLLET, token), "epoll_ctl(ADD)", efd);
            System.out.printf("epoll fd %d, eventfd %d registered edge-triggered with token 0x%x%n", ep, efd, token);

            Thread waker = Thread.ofPlatform().start(() -> {
                Syscalls.current().eventfdWrite(efd, 3);
            });
            MemorySegment events = arena.allocate(EPOLL_EVENT_SIZE * 8);
            int n = Errno.check(sys.epollWait(ep, events, 8, 5_000), "epoll_wait", ep);
            waker.join();
            for (int i = 0; i < n; i++) {
                MemorySegment e = events.asSlice(i * EPOLL_EVENT_SIZE, EPOLL_EVENT_SIZE);
                System.out.printf("epoll_wait: event mask 0x%x, token 0x%x%n",
                        e.get(java.lang.foreign.ValueLayout.JAVA_INT_UNALIGNED, 0),
                        e.get(U64_UNALIGNED, EPOLL_EVENT_DATA_OFFSET));
            }
            System.out.printf("eventfd counter read: %d (the other thread wrote 3)%n", TestSyscalls.current().eventfdRead(efd));
            long again = TestSyscalls.current().eventfdRead(efd);
            System.out.printf("reading it again: %s, as a non-blocking eventfd at 0 must%n",
                    again < 0 ? Errno.name((int) -again) : "value " + again);
            System.out.printf("epoll_wait(timeout 0) now: %d events (edge-triggered, no new edge)%n",
                    sys.epollWait(ep, events, 8, 0));
            sys.close(efd);
            sys.close(ep);
            System.out.println("closed both fds");
        }
    }
}
