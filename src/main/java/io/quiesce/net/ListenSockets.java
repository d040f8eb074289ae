package io.quiesce.net;

import io.quiesce.sys.Errno;
import io.quiesce.sys.raw.SockAddr;
import io.quiesce.sys.raw.Syscalls;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.util.Arrays;

/**
 * Makes a server's listening sockets, and decides who else may listen on its port.
 *
 * <p><b>The kernel's rules</b> ({@code inet_csk_bind_conflict}): a {@code bind} or {@code listen}
 * on an address another socket is listening on fails with {@code EADDRINUSE}, unless both sockets
 * set {@code SO_REUSEPORT} and belong to the same effective UID; they then form a reuseport group
 * and the kernel spreads new connections over it. {@code SO_REUSEADDR} only lets a bind pass
 * sockets that are not listening, such as the {@code TIME_WAIT} remains of the connections of a
 * server that just closed, so a restart is never refused.
 *
 * <p><b>Exclusive (the default).</b> The first socket is bound <em>without</em>
 * {@code SO_REUSEPORT}: if anybody listens on the port (another Quiesce server in this or any
 * process, a JDK {@code ServerSocket}, a reuseport group), the bind fails and
 * {@link Server#bind} throws a {@link java.net.BindException}. Only once the port is ours is
 * {@code SO_REUSEPORT} set on it, before {@code listen}, so that this server's other per-reactor
 * sockets can join it. From then on, by the same rules, a program of the same user that
 * deliberately sets {@code SO_REUSEPORT} could join the group too. So a classic BPF program is
 * attached to the group ({@code SO_ATTACH_REUSEPORT_CBPF}) that picks one of the first
 * {@code n} members, which are this server's own sockets in the order they listened: a socket
 * that joins later is accepted into the group by the kernel but is never given a connection. The
 * program picks a member at random per new connection ({@code SKF_AD_RANDOM}), which balances as
 * well as the kernel's flow hash. Per-core steering ({@code SKF_AD_CPU}) was weighed and not
 * chosen: it helps only with reactors pinned to every CPU and a NIC spreading flows over them;
 * on loopback, or with unpinned reactors, every connection a client thread makes would land on
 * one reactor. What is left: a program that binds in the microseconds between our first
 * {@code listen} and our last could take a place among the first {@code n}; and a socket that
 * joined takes over a slot when one of ours closes, which only happens when the server closes.
 * If the kernel refuses the program (a sandbox without it), the server still binds
 * exclusively, as above, and says so once in the log.
 *
 * <p><b>Shared (opt-in, {@link ServerOptions#sharedPort()}).</b> Every socket sets
 * {@code SO_REUSEPORT} before {@code bind} and no program is attached: the server joins any
 * reuseport group of the same user on the port and the kernel's hash spreads connections over
 * all of them. A group made by an exclusive server gives a sharing newcomer no connections (its
 * program only knows its own sockets): sharing needs every party to opt in.
 */
final class ListenSockets {
    private static final System.Logger LOG = System.getLogger(Server.class.getName());

    /** {@code SO_ATTACH_REUSEPORT_CBPF} ({@code asm-generic/socket.h}, Linux 4.5+); not in the bindings. */
    static final int SO_ATTACH_REUSEPORT_CBPF = 51;
    /** {@code SKF_AD_OFF + SKF_AD_RANDOM} ({@code linux/filter.h}): "load a random u32". */
    private static final int LOAD_RANDOM = -0x1000 + 56;
    /** Classic BPF opcodes ({@code linux/bpf_common.h}). */
    private static final short LD_W_ABS = 0x20;   // BPF_LD | BPF_W | BPF_ABS
    private static final short ALU_MOD_K = 0x94;  // BPF_ALU | BPF_MOD | BPF_K
    private static final short RET_A = 0x16;      // BPF_RET | BPF_A
    private static final int SOCK_FILTER_SIZE = 8; // struct sock_filter {u16 code; u8 jt, jf; u32 k}
    private static final int SOCK_FPROG_SIZE = 16; // struct sock_fprog {u16 len; struct sock_filter *filter}

    private static volatile boolean programRefusalLogged;

    /**
     * The bound sockets, {@code fds[i]} for reactor {@code i}, and the address they share.
     *
     * @param fds the listening sockets, in the order they listened
     * @param address the bound address (the real port if 0 was asked)
     */
    record Bound(int[] fds, InetSocketAddress address) {}

    private ListenSockets() {}

    /**
     * Binds {@code count} listening sockets to {@code address} and listens on each.
     *
     * @throws IOException a {@link java.net.BindException} if the port is in use (and not shared
     *         with us), else the {@code java.net} exception of the failed call; none is left open
     */
    static Bound open(InetSocketAddress address, int count, ServerOptions options) throws IOException {
        Syscalls sys = Syscalls.current();
        int[] fds = new int[count];
        Arrays.fill(fds, -1);
        boolean exclusive = !options.sharedPort();
        InetSocketAddress bound = address;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment addr = a.allocate(SockAddr.MAX_SIZE, 8);
            MemorySegment addrLen = a.allocate(ValueLayout.JAVA_INT);
            for (int i = 0; i < count; i++) {
                int fd = Errno.checkSocket(sys.socket(SockAddr.family(address),
                        Syscalls.SOCK_STREAM | Syscalls.SOCK_NONBLOCK, 0), "socket", -1);
                fds[i] = fd;
                Errno.checkSocket(sys.setsockopt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_REUSEADDR, 1),
                        "setsockopt(SO_REUSEADDR)", fd);
                boolean first = i == 0;
                if (!exclusive || !first) {
                    reusePort(sys, fd);
                }
                // Accepted sockets inherit these (Linux clones the listener): set once, not per connection.
                NetContext.applySocketOptions(sys, fd, options.connection());
                int len = SockAddr.encode(bound, addr);
                Errno.checkSocket(sys.bind(fd, addr, len), "bind(" + bound + ")", fd);
                if (first && exclusive && count > 1) {
                    // The port is ours (the bind above would have failed otherwise): now let our
                    // own sockets join it, and only them get connections.
                    reusePort(sys, fd);
                    attachProgram(sys, a, fd, count, bound);
                }
                Errno.checkSocket(sys.listen(fd, options.backlog()), "listen(" + bound + ")", fd);
                if (first) {
                    addrLen.set(ValueLayout.JAVA_INT, 0, SockAddr.MAX_SIZE);
                    Errno.checkSocket(sys.getsockname(fd, addr, addrLen), "getsockname", fd);
                    bound = SockAddr.decode(addr); // port 0 became a real port: the others share it
                }
            }
        } catch (IOException | RuntimeException e) {
            for (int fd : fds) {
                if (fd >= 0) {
                    sys.close(fd);
                }
            }
            throw e;
        }
        return new Bound(fds, bound);
    }

    private static void reusePort(Syscalls sys, int fd) throws IOException {
        Errno.checkSocket(sys.setsockopt(fd, Syscalls.SOL_SOCKET, Syscalls.SO_REUSEPORT, 1),
                "setsockopt(SO_REUSEPORT)", fd);
    }

    /**
     * Attaches {@code A = random(); A %= members; return A} to {@code fd}'s reuseport group (made
     * here: the socket is bound with {@code SO_REUSEPORT} but not listening yet). The index it
     * returns is a position in the group, so it is always one of the first {@code members}.
     */
    private static void attachProgram(Syscalls sys, Arena a, int fd, int members, InetSocketAddress bound) {
        MemorySegment prog = a.allocate(SOCK_FILTER_SIZE * 3L, 8);
        instruction(prog, 0, LD_W_ABS, LOAD_RANDOM);
        instruction(prog, 1, ALU_MOD_K, members);
        instruction(prog, 2, RET_A, 0);
        MemorySegment fprog = a.allocate(SOCK_FPROG_SIZE, 8);
        fprog.set(ValueLayout.JAVA_SHORT, 0, (short) 3);
        fprog.set(ValueLayout.ADDRESS, 8, prog);
        int r = sys.setsockopt(fd, Syscalls.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog, SOCK_FPROG_SIZE);
        if (r < 0 && !programRefusalLogged) {
            programRefusalLogged = true;
            LOG.log(System.Logger.Level.WARNING, "setsockopt(SO_ATTACH_REUSEPORT_CBPF) on {0}: {1} ({2}); the "
                    + "port is still bound exclusively, but a program of the same user that sets SO_REUSEPORT "
                    + "could take a share of its connections (logged once)", bound, Errno.name(-r), Errno.message(-r));
        }
    }

    private static void instruction(MemorySegment prog, int index, short code, int k) {
        long at = (long) index * SOCK_FILTER_SIZE;
        prog.set(ValueLayout.JAVA_SHORT, at, code);
        prog.set(ValueLayout.JAVA_BYTE, at + 2, (byte) 0);
        prog.set(ValueLayout.JAVA_BYTE, at + 3, (byte) 0);
        prog.set(ValueLayout.JAVA_INT, at + 4, k);
    }
}
