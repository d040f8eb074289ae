package io.quiesce.reactor;

import io.quiesce.reactor.ReactorStats.Counter;
import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;
import io.quiesce.sys.raw.Syscalls;
import io.quiesce.uring.EpollBatch;

import java.util.Arrays;

/**
 * Deferred, coalesced {@code epoll_ctl}: the policy above the raw call
 * ({@code batching-epoll-ctl.txt}). Interest changes made during an iteration are only recorded
 * on their handle; right before {@code epoll_wait} the reactor calls {@link #flush} and each dirty
 * handle's wanted mask is compared with what the kernel has, so only the difference is issued:
 * ADD then close in one iteration costs nothing, a MOD to the mask the kernel has costs nothing,
 * several MODs cost one. Because every change on a reactor's epoll is made by its own thread
 * (single writer), a batch never races another writer and needs no lock.
 *
 * <p>Errors are mapped as the seed describes: ADD meeting EEXIST is issued again as MOD, MOD
 * meeting ENOENT again as ADD (both counted). A pending change for a handle that is closing is
 * dropped, never applied: the fd number might by then name another file. Reactor thread only.
 *
 * <p>With an io_uring ring ({@link #useRing}) the ADDs and MODs are not issued one by one but
 * queued as {@code IORING_OP_EPOLL_CTL}s that the reactor's wait submits in the same
 * {@code io_uring_enter} (the seed's {@code epoll_batch}); their results come back per op and are
 * mapped in {@link #completeRound} before any event is dispatched. The DEL is never queued: it is
 * issued at once, so it always lands before the fd's {@code close} (a DEL batched after a close
 * would hit whatever file reused the number). An op already queued when its handle's close step
 * runs (a shutdown closes every handle between the flush and the wait) reaches the kernel after
 * that DEL, so the round's results undo it rather than apply or remap it.
 */
final class InterestBatch {
    /** What the batch calls when the kernel refuses a handle's registration. */
    interface FailureSink {
        void failed(Handle h, SyscallException cause);
    }

    private final Syscalls sys;
    private final int epfd;
    private final ReactorStats stats;
    private Handle[] dirty = new Handle[64];
    private int dirtyCount;
    private EpollBatch ring;
    /** Ops queued on the ring this round, by op index: the handle, the op and its mask. */
    private Handle[] queued = new Handle[64];
    private int[] queuedOps = new int[64];
    private int[] queuedMasks = new int[64];
    private int queuedCount;
    private boolean neededWork;

    InterestBatch(Syscalls sys, int epfd, ReactorStats stats) {
        this.sys = sys;
        this.epfd = epfd;
        this.stats = stats;
    }

    /**
     * Records that {@code h} wants {@code interest} ({@code -1}: unchanged, i.e. a ONESHOT re-arm).
     * A second change before the flush is coalesced into the first.
     */
    void change(Handle h, int interest) {
        Registration reg = h.registration;
        if (interest >= 0) {
            reg.want(interest);
        }
        if (reg.dirty()) {
            stats.increment(Counter.CTL_MOD_SAVED);
            return;
        }
        reg.dirty(true);
        if (dirtyCount == dirty.length) {
            dirty = Arrays.copyOf(dirty, dirtyCount * 2);
        }
        dirty[dirtyCount++] = h;
    }

    boolean isEmpty() {
        return dirtyCount == 0;
    }

    /** {@return whether ops are queued on the ring for its next round} */
    boolean hasQueued() {
        return queuedCount > 0;
    }

    /** {@return whether the last round's results needed work (a refusal, or a remap)} */
    boolean lastRoundNeededWork() {
        return neededWork;
    }

    /** From now on ADDs and MODs ride on {@code ring}'s next round instead of a syscall each. */
    void useRing(EpollBatch ring) {
        this.ring = ring;
    }

    /** Issues the difference between wanted and kernel state for every dirty handle. */
    void flush(FailureSink onFailure) {
        for (int i = 0; i < dirtyCount; i++) {
            Handle h = dirty[i];
            Registration reg = h.registration;
            dirty[i] = null;
            reg.dirty(false);
            if (reg.closeProcessed()) {
                stats.increment(Counter.CTL_DROPPED_CLOSING);
                continue;
            }
            int mask = Interest.toEpoll(reg.wantedInterest());
            long token = reg.token();
            int op;
            if (reg.kernelEvents() == Registration.NOT_IN_KERNEL) {
                op = Syscalls.EPOLL_CTL_ADD;
            } else if (reg.kernelEvents() == mask) {
                stats.increment(Counter.CTL_MOD_SAVED);
                continue;
            } else {
                op = Syscalls.EPOLL_CTL_MOD;
            }
            if (ring != null) {
                queue(op, h, mask, token, onFailure);
                continue;
            }
            int r = ctl(op, h, mask, token);
            if (r < 0) {
                onFailure.failed(h, new SyscallException("epoll_ctl", h.fd(), -r));
            } else {
                reg.kernelHas(mask);
            }
        }
        dirtyCount = 0;
    }

    private void queue(int op, Handle h, int mask, long token, FailureSink onFailure) {
        int i;
        try {
            i = ring.queueCtl(op, h.fd(), mask, token);
        } catch (SyscallException e) { // an early flush of a full ring failed as a whole
            onFailure.failed(h, e);
            return;
        }
        stats.increment(op == Syscalls.EPOLL_CTL_ADD ? Counter.CTL_ADD : Counter.CTL_MOD);
        stats.increment(Counter.CTL_BATCHED);
        if (i >= queued.length) {
            queued = Arrays.copyOf(queued, i * 2);
            queuedOps = Arrays.copyOf(queuedOps, i * 2);
            queuedMasks = Arrays.copyOf(queuedMasks, i * 2);
        }
        queued[i] = h;
        queuedOps[i] = op;
        queuedMasks[i] = mask;
        queuedCount = i + 1;
    }

    /**
     * After the ring's round: applies each queued op's result, with the seed's mapping (an ADD
     * meeting EEXIST is issued again as MOD, a MOD meeting ENOENT as ADD, each as a syscall of
     * its own: rare, and the wait is over). A failed op fails only its own handle.
     */
    void completeRound(FailureSink onFailure) {
        neededWork = false;
        for (int i = 0; i < queuedCount; i++) {
            Handle h = queued[i];
            queued[i] = null;
            int op = queuedOps[i];
            int mask = queuedMasks[i];
            int result = ring.ctlResult(i);
            if (h.registration.closeProcessed()) {
                undoAfterClose(h, result);
                continue;
            }
            neededWork |= result < 0;
            if (result == -Errno.ECANCELED) {
                // Linked behind an op that failed (EpollBatch.linksOpsToWait): never ran. The
                // next flush issues it again (the kernel state it compares with is unchanged).
                change(h, -1);
                continue;
            }
            int r = remap(result, op, h, mask, h.registration.token());
            if (r < 0) {
                onFailure.failed(h, new SyscallException("epoll_ctl (io_uring)", h.fd(), -r));
            } else {
                h.registration.kernelHas(mask);
            }
        }
        queuedCount = 0;
        ring.clearResults();
    }

    /**
     * The handle was closed between the flush that queued its op and the round that ran it (a
     * shutdown closes every handle there): its DEL step came first and found the kernel without
     * the op (an ADD not applied yet is "never added"; a MOD's DEL makes the MOD meet ENOENT,
     * which must not be mapped to an ADD). What the op put in the kernel is taken out now, before
     * the fd's close, which waits for an epoch after this round; an fd only Quiesce holds needs
     * no DEL, its close removes the registration.
     */
    private void undoAfterClose(Handle h, int result) {
        if (result >= 0 && !h.exclusiveFd()) {
            sys.epollCtl(epfd, Syscalls.EPOLL_CTL_DEL, h.fd(), 0, 0); // an error leaves nothing registered either
            stats.increment(Counter.CTL_DEL);
        }
    }

    private int ctl(int op, Handle h, int mask, long token) {
        int r = sys.epollCtl(epfd, op, h.fd(), mask, token);
        stats.increment(op == Syscalls.EPOLL_CTL_ADD ? Counter.CTL_ADD : Counter.CTL_MOD);
        return remap(r, op, h, mask, token);
    }

    private int remap(int r, int op, Handle h, int mask, long token) {
        if (r == -Errno.EEXIST && op == Syscalls.EPOLL_CTL_ADD) {
            // Already in this epoll (a dup of a registered fd, or an earlier registration the
            // kernel still holds): make it ours with MOD.
            stats.increment(Counter.CTL_EEXIST_AS_MOD);
            r = sys.epollCtl(epfd, Syscalls.EPOLL_CTL_MOD, h.fd(), mask, token);
            stats.increment(Counter.CTL_MOD);
        } else if (r == -Errno.ENOENT && op == Syscalls.EPOLL_CTL_MOD) {
            // The registration vanished under us (the kernel drops it when the file's last
            // reference closes): add it back.
            stats.increment(Counter.CTL_ENOENT_AS_ADD);
            r = sys.epollCtl(epfd, Syscalls.EPOLL_CTL_ADD, h.fd(), mask, token);
            stats.increment(Counter.CTL_ADD);
        }
        return r;
    }

    /**
     * The DEL step of the close protocol: takes {@code h} out of the kernel's interest list unless
     * that costs nothing to skip (never added, or an fd no one else can hold, which closing removes).
     *
     * @return 0 or {@code -errno} of the DEL
     */
    int remove(Handle h) {
        Registration reg = h.registration;
        int r = 0;
        if (reg.kernelEvents() == Registration.NOT_IN_KERNEL) {
            if (reg.dirty()) {
                stats.increment(Counter.CTL_ADD_SAVED); // registered and closed in one iteration
                stats.increment(Counter.CTL_DEL_SAVED);
            } else if (!reg.completionOnly()) {
                stats.increment(Counter.CTL_DEL_SAVED);
            } // else its I/O ran on io_uring and it never asked for epoll: there was nothing to save
        } else if (h.exclusiveFd()) {
            // epoll-semantics-ofd-dup-fork.txt: the registration lives as long as the open file
            // description; Quiesce made this fd and never handed it out, so close(fd) ends both.
            stats.increment(Counter.CTL_DEL_SAVED);
        } else {
            // epoll-dup-shutdown-close.txt: a dup elsewhere keeps the file alive, so without an
            // explicit DEL a closed fd would keep firing events here.
            r = sys.epollCtl(epfd, Syscalls.EPOLL_CTL_DEL, h.fd(), 0, 0);
            stats.increment(Counter.CTL_DEL);
        }
        reg.kernelHas(Registration.NOT_IN_KERNEL);
        return r;
    }
}
