package io.quiesce.uring;

import io.quiesce.sys.raw.Syscalls;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.linux.LinuxH;
import io.quiesce.sys.linux.io_cqring_offsets;
import io.quiesce.sys.linux.io_sqring_offsets;
import io.quiesce.sys.linux.io_uring_cqe;
import io.quiesce.sys.linux.io_uring_params;
import io.quiesce.sys.linux.io_uring_probe;
import io.quiesce.sys.linux.io_uring_probe_op;
import io.quiesce.sys.linux.io_uring_sqe;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.VarHandle;
import java.util.BitSet;

/**
 * One io_uring instance: its fd, the submission and completion rings and the SQE array as
 * mapped segments, and the head/tail protocol between this process and the kernel. Policy-free:
 * it fills, publishes and reaps; what to submit and when is the caller's business.
 *
 * <p><b>Memory order</b>, as the kernel documents it for the shared rings
 * ({@code include/uapi/linux/io_uring.h}, io_uring(7)): the application writes SQEs, then
 * publishes them with a <em>store-release</em> of the SQ tail, so the kernel cannot see the new
 * tail before the entries; it reads the SQ head (written by the kernel) with a
 * <em>load-acquire</em> before reusing a slot; it reads the CQ tail with a <em>load-acquire</em>,
 * so the CQEs below it are visible, and gives the slots back with a <em>store-release</em> of
 * the CQ head, so the kernel cannot overwrite a CQE still being read. Everything else (the SQ
 * array, the SQE bodies, our local copies of the indices) is plain.
 *
 * <p><b>Threads.</b> One thread only: the ring is meant to be created and entered by its
 * reactor thread (with {@code IORING_SETUP_SINGLE_ISSUER} the kernel refuses any other
 * submitter with {@code EEXIST}).
 *
 * <p><b>fds.</b> The ring fd is close-on-exec: {@code io_uring_setup} always installs it with
 * {@code O_CLOEXEC}. {@link #close()} unmaps the rings and closes the fd once.
 */
public final class Ring implements AutoCloseable {
    public static final int OP_NOP = LinuxH.IORING_OP_NOP();
    public static final int OP_TIMEOUT = LinuxH.IORING_OP_TIMEOUT();
    public static final int OP_LINK_TIMEOUT = LinuxH.IORING_OP_LINK_TIMEOUT();
    public static final int OP_ASYNC_CANCEL = LinuxH.IORING_OP_ASYNC_CANCEL();
    public static final int OP_EPOLL_CTL = LinuxH.IORING_OP_EPOLL_CTL();
    public static final int OP_EPOLL_WAIT = LinuxH.IORING_OP_EPOLL_WAIT();
    public static final int OP_ACCEPT = LinuxH.IORING_OP_ACCEPT();
    public static final int OP_CONNECT = LinuxH.IORING_OP_CONNECT();
    public static final int OP_RECV = LinuxH.IORING_OP_RECV();
    public static final int OP_SEND = LinuxH.IORING_OP_SEND();
    public static final int OP_SENDMSG = LinuxH.IORING_OP_SENDMSG();
    public static final int OP_SHUTDOWN = LinuxH.IORING_OP_SHUTDOWN();
    public static final int OP_CLOSE = LinuxH.IORING_OP_CLOSE();
    public static final int OP_MSG_RING = LinuxH.IORING_OP_MSG_RING();
    public static final int OP_POLL_ADD = LinuxH.IORING_OP_POLL_ADD();
    public static final int OP_POLL_REMOVE = LinuxH.IORING_OP_POLL_REMOVE();

    public static final int SETUP_CLAMP = LinuxH.IORING_SETUP_CLAMP();
    public static final int SETUP_SUBMIT_ALL = LinuxH.IORING_SETUP_SUBMIT_ALL();
    public static final int SETUP_COOP_TASKRUN = LinuxH.IORING_SETUP_COOP_TASKRUN();
    public static final int SETUP_SINGLE_ISSUER = LinuxH.IORING_SETUP_SINGLE_ISSUER();
    public static final int SETUP_DEFER_TASKRUN = LinuxH.IORING_SETUP_DEFER_TASKRUN();

    public static final int FEAT_SINGLE_MMAP = LinuxH.IORING_FEAT_SINGLE_MMAP();
    public static final int FEAT_NODROP = LinuxH.IORING_FEAT_NODROP();
    public static final int FEAT_EXT_ARG = LinuxH.IORING_FEAT_EXT_ARG();
    public static final int FEAT_FAST_POLL = LinuxH.IORING_FEAT_FAST_POLL();
    public static final int FEAT_CQE_SKIP = LinuxH.IORING_FEAT_CQE_SKIP();

    public static final int ENTER_GETEVENTS = LinuxH.IORING_ENTER_GETEVENTS();
    public static final int ENTER_EXT_ARG = LinuxH.IORING_ENTER_EXT_ARG();

    public static final int SQE_IO_LINK = LinuxH.IOSQE_IO_LINK();
    public static final int SQE_IO_HARDLINK = LinuxH.IOSQE_IO_HARDLINK();
    public static final int SQE_CQE_SKIP_SUCCESS = LinuxH.IOSQE_CQE_SKIP_SUCCESS();
    public static final int SQE_BUFFER_SELECT = LinuxH.IOSQE_BUFFER_SELECT();
    public static final int SQE_ASYNC = LinuxH.IOSQE_ASYNC();

    public static final int CQE_F_BUFFER = LinuxH.IORING_CQE_F_BUFFER();
    public static final int CQE_F_MORE = LinuxH.IORING_CQE_F_MORE();
    public static final int CQE_F_SOCK_NONEMPTY = LinuxH.IORING_CQE_F_SOCK_NONEMPTY();
    public static final int CQE_BUFFER_SHIFT = LinuxH.IORING_CQE_BUFFER_SHIFT();

    /** {@code sqe->ioprio} of {@code OP_ACCEPT}: keep accepting (5.19+). */
    public static final int ACCEPT_MULTISHOT = LinuxH.IORING_ACCEPT_MULTISHOT();
    /** {@code sqe->ioprio} of {@code OP_RECV}: keep receiving into provided buffers (6.0+). */
    public static final int RECV_MULTISHOT = LinuxH.IORING_RECV_MULTISHOT();
    /** {@code sqe->ioprio} of send/recv: arm poll first instead of trying the transfer (5.19+). */
    public static final int RECVSEND_POLL_FIRST = LinuxH.IORING_RECVSEND_POLL_FIRST();
    /** {@code sqe->len} of {@code OP_POLL_ADD}: keep reporting (5.13+). */
    public static final int POLL_ADD_MULTI = LinuxH.IORING_POLL_ADD_MULTI();

    /** {@code cancel_flags}: every match, not the first; the CQE's res is the count (5.19+). */
    public static final int CANCEL_ALL = LinuxH.IORING_ASYNC_CANCEL_ALL();
    /** {@code cancel_flags}: match on {@code sqe->fd} instead of user_data (5.19+). */
    public static final int CANCEL_FD = LinuxH.IORING_ASYNC_CANCEL_FD();
    /** {@code cancel_flags}: match any request (5.19+). */
    public static final int CANCEL_ANY = LinuxH.IORING_ASYNC_CANCEL_ANY();
    /** {@code cancel_flags}: match on user_data, the default when no other key is given (6.0+). */
    public static final int CANCEL_USERDATA = LinuxH.IORING_ASYNC_CANCEL_USERDATA();

    /** {@code OP_MSG_RING} command ({@code sqe->addr}): post a CQE on the target ring (5.18+). */
    static final int MSG_DATA = LinuxH.IORING_MSG_DATA();

    /** Opcodes are a byte; the probe asks for all of them. */
    private static final int PROBE_OPS = 256;
    private static final long SQE_SIZE = io_uring_sqe.layout().byteSize();
    private static final long CQE_SIZE = io_uring_cqe.layout().byteSize();
    private static final VarHandle U32 = ValueLayout.JAVA_INT.varHandle();

    private static final long SQE_OPCODE = io_uring_sqe.opcode$offset();
    private static final long SQE_FLAGS = io_uring_sqe.flags$offset();
    private static final long SQE_IOPRIO = io_uring_sqe.ioprio$offset();
    private static final long SQE_BUF_GROUP = io_uring_sqe.buf_group$offset();
    private static final long SQE_FD = io_uring_sqe.fd$offset();
    private static final long SQE_OFF = io_uring_sqe.off$offset();
    private static final long SQE_ADDR = io_uring_sqe.addr$offset();
    private static final long SQE_LEN = io_uring_sqe.len$offset();
    private static final long SQE_OP_FLAGS = io_uring_sqe.rw_flags$offset();
    private static final long SQE_USER_DATA = io_uring_sqe.user_data$offset();
    private static final long CQE_USER_DATA = io_uring_cqe.user_data$offset();
    private static final long CQE_RES = io_uring_cqe.res$offset();
    private static final long CQE_FLAGS = io_uring_cqe.flags$offset();

    private final UringCalls calls;
    private final int fd;
    private final int setupFlags;
    private final int features;
    private final int sqEntries;
    private final int cqEntries;
    private final int sqMask;
    private final int cqMask;
    private final MemorySegment sqRing;
    private final MemorySegment cqRing;
    private final MemorySegment sqes;
    private final long sqHeadAt, sqTailAt, sqFlagsAt;
    private final long cqHeadAt, cqTailAt, cqesAt, cqOverflowAt;
    private final MemorySegment probeBuffer;

    /** Our tail: SQEs filled so far (published to the kernel by {@link #publish()}). */
    private int sqTail;
    /** The tail last stored to the ring. */
    private int sqTailPublished;
    /** Our CQ head: CQEs consumed so far; stored to the ring by {@link #cqAdvance(int)}. */
    private int cqHead;
    private boolean closed;

    private Ring(UringCalls calls, Arena arena, int fd, MemorySegment p) throws SyscallException {
        this.calls = calls;
        this.fd = fd;
        this.setupFlags = io_uring_params.flags(p);
        this.features = io_uring_params.features(p);
        this.sqEntries = io_uring_params.sq_entries(p);
        this.cqEntries = io_uring_params.cq_entries(p);
        var so = io_uring_params.sq_off(p);
        var co = io_uring_params.cq_off(p);
        long sqSize = io_sqring_offsets.array(so) + (long) sqEntries * Integer.BYTES;
        long cqSize = io_cqring_offsets.cqes(co) + (long) cqEntries * CQE_SIZE;
        // IORING_FEAT_SINGLE_MMAP (5.4+): SQ and CQ rings share one mapping, sized for both.
        boolean single = (features & FEAT_SINGLE_MMAP) != 0;
        if (single) {
            sqSize = cqSize = Math.max(sqSize, cqSize);
        }
        MemorySegment sq = null, cq = null, se = null;
        try {
            sq = map(sqSize, LinuxH.IORING_OFF_SQ_RING());
            cq = single ? sq : map(cqSize, LinuxH.IORING_OFF_CQ_RING());
            se = map(sqEntries * SQE_SIZE, LinuxH.IORING_OFF_SQES());
        } catch (SyscallException e) {
            unmap(sq);
            if (cq != sq) {
                unmap(cq);
            }
            Syscalls.current().close(fd);
            throw e;
        }
        this.sqRing = sq;
        this.cqRing = cq;
        this.sqes = se;
        this.sqHeadAt = io_sqring_offsets.head(so);
        this.sqTailAt = io_sqring_offsets.tail(so);
        this.sqFlagsAt = io_sqring_offsets.flags(so);
        this.cqHeadAt = io_cqring_offsets.head(co);
        this.cqTailAt = io_cqring_offsets.tail(co);
        this.cqesAt = io_cqring_offsets.cqes(co);
        this.cqOverflowAt = io_cqring_offsets.overflow(co);
        this.sqMask = sq.get(ValueLayout.JAVA_INT, io_sqring_offsets.ring_mask(so));
        this.cqMask = cq.get(ValueLayout.JAVA_INT, io_cqring_offsets.ring_mask(co));
        // Slot i of the SQ array always names SQE i: entries are filled in ring order, so the
        // indirection is set once here and never touched again.
        long array = io_sqring_offsets.array(so);
        for (int i = 0; i < sqEntries; i++) {
            sq.set(ValueLayout.JAVA_INT, array + (long) i * Integer.BYTES, i);
        }
        this.sqTail = this.sqTailPublished = (int) U32.getAcquire(sq, sqTailAt);
        this.cqHead = (int) U32.getAcquire(cq, cqHeadAt);
        this.probeBuffer = arena.allocate(
                io_uring_probe.layout().byteSize() + PROBE_OPS * io_uring_probe_op.layout().byteSize(), 8);
    }

    private MemorySegment map(long size, long offset) throws SyscallException {
        long a = calls.mmapRing(fd, size, offset);
        if (a < 0) {
            throw new SyscallException("mmap(io_uring offset=0x" + Long.toHexString(offset) + ")", fd,
                    (int) -a);
        }
        return MemorySegment.ofAddress(a).reinterpret(size);
    }

    private void unmap(MemorySegment s) {
        if (s != null) {
            calls.munmap(s.address(), s.byteSize());
        }
    }

    /**
     * {@code io_uring_setup(entries, {flags})} and the ring mappings.
     *
     * @param calls the calling thread's io_uring syscall table
     * @param arena the owning thread's arena (the setup parameters and probe buffer)
     * @param entries SQ size wanted (the kernel rounds up to a power of two; with
     *     {@link #SETUP_CLAMP} it clamps instead of failing on too large a value)
     * @param flags {@code IORING_SETUP_*}
     * @return the ring
     * @throws SyscallException naming {@code io_uring_setup} or {@code mmap} and the errno;
     *     {@code ENOSYS} (no io_uring), {@code EPERM} (disabled by sysctl or seccomp) and
     *     {@code EINVAL} (a flag this kernel does not know) are the ones a caller falls back on
     */
    public static Ring open(UringCalls calls, Arena arena, int entries, int flags)
            throws SyscallException {
        var p = arena.allocate(io_uring_params.layout());
        io_uring_params.flags(p, flags);
        int fd = calls.setup(entries, p);
        if (fd < 0) {
            throw new SyscallException("io_uring_setup(flags=0x" + Integer.toHexString(flags) + ")",
                    -1, -fd);
        }
        return new Ring(calls, arena, fd, p);
    }

    /** {@return the ring fd} */
    public int fd() {
        return fd;
    }

    /** {@return the {@code IORING_SETUP_*} flags the ring was created with} */
    public int setupFlags() {
        return setupFlags;
    }

    /** {@return the {@code IORING_FEAT_*} bits the kernel reported} */
    public int features() {
        return features;
    }

    /** {@return the SQ size} */
    public int sqEntries() {
        return sqEntries;
    }

    /** {@return the CQ size} */
    public int cqEntries() {
        return cqEntries;
    }

    // ---- probe ----

    /**
     * {@code io_uring_register(IORING_REGISTER_PROBE)} (5.6+).
     *
     * @return the opcodes this kernel supports
     * @throws SyscallException if the kernel refuses the probe ({@code EINVAL} before 5.6)
     */
    public Probe probe() throws SyscallException {
        probeBuffer.fill((byte) 0);
        int r = calls.register(fd, LinuxH.IORING_REGISTER_PROBE(), probeBuffer, PROBE_OPS);
        if (r < 0) {
            throw new SyscallException("io_uring_register(PROBE)", fd, -r);
        }
        int last = Byte.toUnsignedInt(io_uring_probe.last_op(probeBuffer));
        int len = Byte.toUnsignedInt(io_uring_probe.ops_len(probeBuffer));
        var bits = new BitSet(len);
        long opsAt = io_uring_probe.ops$offset();
        long opSize = io_uring_probe_op.layout().byteSize();
        for (int i = 0; i < len; i++) {
            var op = probeBuffer.asSlice(opsAt + i * opSize, opSize);
            if ((io_uring_probe_op.flags(op) & LinuxH.IO_URING_OP_SUPPORTED()) != 0) {
                bits.set(Byte.toUnsignedInt(io_uring_probe_op.op(op)));
            }
        }
        return new Probe(last, bits);
    }

    // ---- submission ----

    /** {@return free SQ slots (the kernel's head read with acquire)} */
    public int sqSpace() {
        int head = (int) U32.getAcquire(sqRing, sqHeadAt);
        return sqEntries - (sqTail - head);
    }

    /** {@return SQEs filled but not yet handed to the kernel by an enter} */
    public int sqPending() {
        return sqTail - sqTailPublished;
    }

    /**
     * Takes the next SQE, zeroed.
     *
     * @return its handle for the {@code prep*} methods (an offset in the SQE array), or
     *     {@code -1} when the SQ is full
     */
    public long nextSqe() {
        if (sqSpace() == 0) {
            return -1;
        }
        long at = (long) (sqTail & sqMask) * SQE_SIZE;
        sqTail++;
        for (long o = 0; o < SQE_SIZE; o += Long.BYTES) {
            sqes.set(ValueLayout.JAVA_LONG, at + o, 0L);
        }
        return at;
    }

    /** Fills an SQE's common fields (the rest stays zero). */
    public void prep(long sqe, int opcode, int fd, long addr, int len, long off, long userData) {
        sqes.set(ValueLayout.JAVA_BYTE, sqe + SQE_OPCODE, (byte) opcode);
        sqes.set(ValueLayout.JAVA_INT, sqe + SQE_FD, fd);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SQE_ADDR, addr);
        sqes.set(ValueLayout.JAVA_INT, sqe + SQE_LEN, len);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SQE_OFF, off);
        sqes.set(ValueLayout.JAVA_LONG, sqe + SQE_USER_DATA, userData);
    }

    /** Sets an SQE's {@code IOSQE_*} flags. */
    public void sqeFlags(long sqe, int flags) {
        sqes.set(ValueLayout.JAVA_BYTE, sqe + SQE_FLAGS, (byte) flags);
    }

    /** Sets the opcode-specific flags word ({@code timeout_flags}, {@code msg_flags}, ...). */
    public void sqeOpFlags(long sqe, int flags) {
        sqes.set(ValueLayout.JAVA_INT, sqe + SQE_OP_FLAGS, flags);
    }

    /**
     * Sets an SQE's {@code ioprio}, which the socket opcodes read as their own flags
     * ({@link #ACCEPT_MULTISHOT}, {@link #RECV_MULTISHOT}, {@link #RECVSEND_POLL_FIRST}).
     */
    public void sqeIoprio(long sqe, int ioprio) {
        sqes.set(ValueLayout.JAVA_SHORT, sqe + SQE_IOPRIO, (short) ioprio);
    }

    /** {@code IORING_OP_NOP}. */
    public void prepNop(long sqe, long userData) {
        prep(sqe, OP_NOP, -1, 0, 0, 0, userData);
    }

    /**
     * {@code IORING_OP_EPOLL_CTL} (5.6+): {@code epoll_ctl(epfd, op, fd, event)}. The kernel
     * copies {@code *event} when it prepares the SQE, i.e. during the enter that submits it.
     *
     * @param event address of a {@code struct epoll_event} (ignored for {@code DEL})
     */
    public void prepEpollCtl(long sqe, int epfd, int op, int fd, long event, long userData) {
        prep(sqe, OP_EPOLL_CTL, epfd, event, op, fd, userData);
    }

    /**
     * {@code IORING_OP_EPOLL_WAIT} (6.15+): {@code epoll_wait(epfd, events, maxEvents, 0)}
     * that, when nothing is ready, waits on the epoll file inside io_uring and completes when
     * it becomes readable. It has no timeout of its own: the caller bounds the wait.
     *
     * @param events address of {@code maxEvents} packed {@code struct epoll_event}s; the kernel
     *     writes them when the CQE is posted, so they must stay valid until it is reaped
     */
    public void prepEpollWait(long sqe, int epfd, long events, int maxEvents, long userData) {
        prep(sqe, OP_EPOLL_WAIT, epfd, events, maxEvents, 0, userData);
    }

    /**
     * {@code IORING_OP_LINK_TIMEOUT}: cancels the SQE linked before it ({@link #SQE_IO_LINK})
     * if that has not completed within {@code *timespec}.
     *
     * @param timespec address of a {@code struct __kernel_timespec}, read at submission
     */
    public void prepLinkTimeout(long sqe, long timespec, long userData) {
        prep(sqe, OP_LINK_TIMEOUT, -1, timespec, 1, 0, userData);
    }

    // ---- sockets, cancel, close, msg_ring, poll ----

    /**
     * {@code IORING_OP_ACCEPT} (5.5+): {@code accept4(fd, addr, addrLen, acceptFlags)}; the CQE's
     * res is the new fd or {@code -errno}.
     *
     * @param addr a {@code struct sockaddr} buffer for the peer address, or 0
     * @param addrLenPtr address of its {@code socklen_t} size (in: capacity, out: length), or 0;
     *     both are written when the CQE is posted, so with {@code multishot} they are shared by
     *     every accept and are only meaningful when read right after each CQE
     * @param acceptFlags {@code SOCK_CLOEXEC | SOCK_NONBLOCK} (the only two the kernel takes; pass
     *     {@code SOCK_CLOEXEC}: io_uring does not add it)
     * @param multishot {@link #ACCEPT_MULTISHOT} (5.19+): one SQE accepts every connection, each
     *     CQE carrying {@link #CQE_F_MORE} while it stays armed; a CQE without it (an error, a
     *     cancel) ends it
     */
    public void prepAccept(long sqe, int fd, long addr, long addrLenPtr, int acceptFlags,
                           boolean multishot, long userData) {
        prep(sqe, OP_ACCEPT, fd, addr, 0, addrLenPtr, userData);
        sqeOpFlags(sqe, acceptFlags);
        sqeIoprio(sqe, multishot ? ACCEPT_MULTISHOT : 0);
    }

    /**
     * {@code IORING_OP_CONNECT} (5.5+): {@code connect(fd, addr, addrLen)}, completing when the
     * connection is made or refused (res 0 or {@code -errno}: no {@code EINPROGRESS} to poll for).
     * The kernel copies the address at submission.
     */
    public void prepConnect(long sqe, int fd, long addr, int addrLen, long userData) {
        prep(sqe, OP_CONNECT, fd, addr, 0, addrLen, userData);
    }

    /**
     * {@code IORING_OP_RECV} (5.6+): {@code recv(fd, addr, len, msgFlags)}; res is the bytes
     * read, 0 at end of stream, or {@code -errno}. The buffer must stay valid until the CQE.
     */
    public void prepRecv(long sqe, int fd, long addr, int len, int msgFlags, long userData) {
        prep(sqe, OP_RECV, fd, addr, len, 0, userData);
        sqeOpFlags(sqe, msgFlags);
    }

    /**
     * Multishot {@code IORING_OP_RECV} (6.0+) into provided buffers: each CQE names the buffer
     * it filled ({@link #CQE_F_BUFFER}, {@link #bufferId(int)}) and carries {@link #CQE_F_MORE}
     * while the receive stays armed. It ends with a CQE without {@code F_MORE}: res 0 at end of
     * stream, {@code -ENOBUFS} when group {@code bufferGroup} has no buffer left (the data
     * stays in the socket; the caller recycles and submits again), or another {@code -errno}.
     *
     * @param bufferGroup the group id of a {@link BufferRing} registered on this ring
     */
    public void prepRecvMultishot(long sqe, int fd, int bufferGroup, int msgFlags, long userData) {
        prep(sqe, OP_RECV, fd, 0, 0, 0, userData);
        sqeOpFlags(sqe, msgFlags);
        sqeFlags(sqe, SQE_BUFFER_SELECT);
        sqeIoprio(sqe, RECV_MULTISHOT);
        sqes.set(ValueLayout.JAVA_SHORT, sqe + SQE_BUF_GROUP, (short) bufferGroup);
    }

    /**
     * {@code IORING_OP_SEND} (5.6+): {@code send(fd, addr, len, msgFlags)}; res is the bytes
     * sent or {@code -errno}. Pass {@code MSG_NOSIGNAL}: a send to a reset peer is then
     * {@code -EPIPE}, not a {@code SIGPIPE}.
     */
    public void prepSend(long sqe, int fd, long addr, int len, int msgFlags, long userData) {
        prep(sqe, OP_SEND, fd, addr, len, 0, userData);
        sqeOpFlags(sqe, msgFlags);
    }

    /**
     * {@code IORING_OP_SENDMSG} (5.3+): {@code sendmsg(fd, msghdr, msgFlags)}. The kernel copies
     * the {@code struct msghdr} and its iovec array at submission; the data they point at must
     * stay valid until the CQE. Pass {@code MSG_NOSIGNAL}, as for {@link #prepSend}.
     */
    public void prepSendmsg(long sqe, int fd, long msghdr, int msgFlags, long userData) {
        prep(sqe, OP_SENDMSG, fd, msghdr, 0, 0, userData);
        sqeOpFlags(sqe, msgFlags);
    }

    /**
     * {@code IORING_OP_ASYNC_CANCEL} of the request(s) submitted with {@code targetUserData}.
     * The cancelled request completes with {@code -ECANCELED} (a multishot one without
     * {@link #CQE_F_MORE}); this SQE's res is 0, {@code -ENOENT} (nothing matched),
     * {@code -EALREADY} (it was running and may still complete), or with {@link #CANCEL_ALL}
     * the number cancelled.
     *
     * @param cancelFlags {@link #CANCEL_ALL} or 0
     */
    public void prepCancel(long sqe, long targetUserData, int cancelFlags, long userData) {
        prep(sqe, OP_ASYNC_CANCEL, -1, targetUserData, 0, 0, userData);
        sqeOpFlags(sqe, cancelFlags);
    }

    /**
     * {@code IORING_OP_ASYNC_CANCEL} keyed on the fd (5.19+): {@link #CANCEL_FD} is added to
     * {@code cancelFlags}. Results as for {@link #prepCancel}.
     *
     * @param cancelFlags {@link #CANCEL_ALL} to cancel every request on {@code fd}, or 0 for one
     */
    public void prepCancelFd(long sqe, int fd, int cancelFlags, long userData) {
        prep(sqe, OP_ASYNC_CANCEL, fd, 0, 0, 0, userData);
        sqeOpFlags(sqe, cancelFlags | CANCEL_FD);
    }

    /** {@code IORING_OP_SHUTDOWN} (5.11+): {@code shutdown(fd, how)}; res 0 or {@code -errno}. */
    public void prepShutdown(long sqe, int fd, int how, long userData) {
        prep(sqe, OP_SHUTDOWN, fd, 0, how, 0, userData);
    }

    /**
     * {@code IORING_OP_CLOSE} (5.6+): {@code close(fd)}; res 0 or {@code -errno}. Like
     * {@code close(2)}, it does not cancel requests in flight on {@code fd}: they hold their own
     * reference to the file, so cancel them first ({@link #prepCancelFd}).
     */
    public void prepClose(long sqe, int fd, long userData) {
        prep(sqe, OP_CLOSE, fd, 0, 0, 0, userData);
    }

    /**
     * {@code IORING_OP_MSG_RING} with {@code IORING_MSG_DATA} (5.18+): posts a CQE on the ring
     * {@code targetRingFd} with {@code user_data = targetUserData}, {@code res = res} and flags 0
     * — a wakeup with a payload, without an eventfd. This SQE's own res is 0 or {@code -errno}
     * ({@code -EBADFD} if the target is not a ring, {@code -EOVERFLOW} if its CQ is full). A
     * target set up with {@code DEFER_TASKRUN} sees the CQE when its own thread next enters to
     * wait.
     */
    public void prepMsgRing(long sqe, int targetRingFd, int res, long targetUserData, long userData) {
        prep(sqe, OP_MSG_RING, targetRingFd, MSG_DATA, res, targetUserData, userData);
    }

    /**
     * {@code IORING_OP_POLL_ADD} (5.1+): completes with the {@code POLL*} mask that became ready
     * (the {@code EPOLL*} values for the low bits), or {@code -errno}.
     *
     * @param pollMask {@code POLLIN}, {@code POLLOUT}, ... ({@code poll32_events})
     * @param multishot {@link #POLL_ADD_MULTI} (5.13+): one CQE per readiness edge, each with
     *     {@link #CQE_F_MORE} while it stays armed
     */
    public void prepPollAdd(long sqe, int fd, int pollMask, boolean multishot, long userData) {
        prep(sqe, OP_POLL_ADD, fd, 0, multishot ? POLL_ADD_MULTI : 0, 0, userData);
        sqeOpFlags(sqe, pollMask);
    }

    /** Publishes the filled SQEs to the kernel (store-release of the SQ tail). */
    public void publish() {
        U32.setRelease(sqRing, sqTailAt, sqTail);
    }

    /**
     * Publishes the filled SQEs and makes one {@code io_uring_enter}.
     *
     * @param minComplete CQEs to wait for ({@code 0}: submit only)
     * @param flags extra {@code IORING_ENTER_*} flags ({@code GETEVENTS} is added when
     *     {@code minComplete > 0})
     * @param arg the enter's argument ({@code io_uring_getevents_arg} with
     *     {@link #ENTER_EXT_ARG}), or {@code NULL}
     * @param argSize its size
     * @param blocking whether the call may sleep (see {@link UringCalls#enter})
     * @return what {@code io_uring_enter} returned: SQEs consumed, or {@code -errno}
     */
    public int enter(int minComplete, int flags, MemorySegment arg, long argSize, boolean blocking) {
        int toSubmit = sqTail - sqTailPublished;
        if (toSubmit > 0) {
            publish();
        }
        if (minComplete > 0) {
            flags |= ENTER_GETEVENTS;
        }
        int r = calls.enter(fd, toSubmit, minComplete, flags, arg, argSize, blocking);
        // SQEs not consumed (an error return consumes none) stay in the ring; the next enter
        // passes them again as to_submit.
        if (r > 0) {
            sqTailPublished += Math.min(r, toSubmit);
        }
        return r;
    }

    // ---- completion ----

    /** {@return CQEs posted and not yet consumed (the kernel's tail read with acquire)} */
    public int cqReady() {
        return (int) U32.getAcquire(cqRing, cqTailAt) - cqHead;
    }

    private long cqeAt(int i) {
        return cqesAt + (long) ((cqHead + i) & cqMask) * CQE_SIZE;
    }

    /** {@return {@code user_data} of the {@code i}-th unconsumed CQE} */
    public long cqeUserData(int i) {
        return cqRing.get(ValueLayout.JAVA_LONG, cqeAt(i) + CQE_USER_DATA);
    }

    /** {@return {@code res} of the {@code i}-th unconsumed CQE: a result or {@code -errno}} */
    public int cqeRes(int i) {
        return cqRing.get(ValueLayout.JAVA_INT, cqeAt(i) + CQE_RES);
    }

    /** {@return {@code flags} of the {@code i}-th unconsumed CQE} */
    public int cqeFlags(int i) {
        return cqRing.get(ValueLayout.JAVA_INT, cqeAt(i) + CQE_FLAGS);
    }

    /**
     * {@return the provided buffer a CQE names: its {@code bid}, valid only when the flags carry
     * {@link #CQE_F_BUFFER}}
     *
     * @param cqeFlags the CQE's flags ({@link #cqeFlags(int)})
     */
    public static int bufferId(int cqeFlags) {
        return cqeFlags >>> CQE_BUFFER_SHIFT;
    }

    /** Gives {@code n} CQEs back to the kernel (store-release of the CQ head). */
    public void cqAdvance(int n) {
        cqHead += n;
        U32.setRelease(cqRing, cqHeadAt, cqHead);
    }

    /** {@return CQEs the kernel dropped for lack of room (0 with {@code FEAT_NODROP})} */
    public int cqOverflow() {
        return (int) U32.getAcquire(cqRing, cqOverflowAt);
    }

    /** {@return the SQ ring's {@code IORING_SQ_*} flags} */
    public int sqFlags() {
        return (int) U32.getAcquire(sqRing, sqFlagsAt);
    }

    /** {@return whether {@link #close()} has run} */
    boolean isClosed() {
        return closed;
    }

    /** Unmaps the rings and closes the ring fd; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        unmap(sqes);
        if (cqRing != sqRing) {
            unmap(cqRing);
        }
        unmap(sqRing);
        Syscalls.current().close(fd);
    }
}
