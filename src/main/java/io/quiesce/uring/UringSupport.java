package io.quiesce.uring;

import io.quiesce.sys.Errno;
import io.quiesce.sys.SyscallException;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Whether io_uring can be used here, and a ring created with the best setup flags this kernel
 * accepts. The answers are reasons a caller can log in one line when it falls back to plain
 * epoll.
 */
public final class UringSupport {
    /** The sysctl that disables io_uring (6.6+): 0 enabled, 1 only for {@code io_uring_group}, 2 off. */
    public static final Path DISABLED_SYSCTL = Path.of("/proc/sys/kernel/io_uring_disabled");

    /**
     * The setup flags tried in order. {@code SINGLE_ISSUER | DEFER_TASKRUN} (6.1+): one thread
     * submits, and completion work runs only when that thread enters to wait — so the kernel
     * never interrupts the reactor to run it, and nothing it writes (the epoll events array)
     * changes outside {@code io_uring_enter}. {@code COOP_TASKRUN} (5.19+) is the next best: no
     * IPI to run task work. {@code SUBMIT_ALL} (5.18+): an SQE that fails to prepare gets its
     * error CQE and the rest of the batch is still submitted, instead of the submission
     * stopping there. {@code CLAMP}: too large a size is clamped rather than refused. Each
     * step drops what an older kernel refuses with {@code EINVAL}.
     */
    public static final List<Integer> SETUP_FLAGS = List.of(
            Ring.SETUP_SINGLE_ISSUER | Ring.SETUP_DEFER_TASKRUN | Ring.SETUP_SUBMIT_ALL | Ring.SETUP_CLAMP,
            Ring.SETUP_COOP_TASKRUN | Ring.SETUP_SUBMIT_ALL | Ring.SETUP_CLAMP,
            Ring.SETUP_CLAMP);

    private UringSupport() {}

    /**
     * Reads the io_uring sysctl.
     *
     * @param sysctl the file to read (normally {@link #DISABLED_SYSCTL})
     * @return a reason io_uring is switched off, or {@code null} if it is not (or the file
     *     does not exist: kernels before 6.6 have no switch; setup then decides)
     */
    public static String disabledBySysctl(Path sysctl) {
        String v;
        try {
            v = Files.readString(sysctl).strip();
        } catch (IOException e) {
            return null;
        }
        return v.equals("2") ? sysctl + " = 2 (io_uring disabled for every process)" : null;
    }

    /**
     * Creates a ring with the first flag set of {@code flagChain} the kernel accepts.
     *
     * @param flagChain setup flags to try in order (normally {@link #SETUP_FLAGS}); only
     *     {@code EINVAL} moves on to the next
     * @throws SyscallException the last refusal: {@code ENOSYS} (no io_uring in this kernel),
     *     {@code EPERM} (disabled by sysctl, or a seccomp filter in a container), {@code EINVAL}
     *     (none of the flag sets), {@code ENOMEM}/{@code EMFILE} (resources)
     */
    public static Ring open(UringCalls calls, Arena arena, int entries, List<Integer> flagChain)
            throws SyscallException {
        SyscallException last = null;
        for (int flags : flagChain) {
            try {
                return Ring.open(calls, arena, entries, flags);
            } catch (SyscallException e) {
                last = e;
                if (e.errno() != Errno.EINVAL) {
                    break;
                }
            }
        }
        throw last != null ? last : new SyscallException("io_uring_setup(no flags to try)", -1,
                Errno.EINVAL);
    }

    /** {@return a one-line reason for a setup refusal, naming what it means here} */
    public static String reason(SyscallException e) {
        String meaning = e.errno() == Errno.ENOSYS ? "kernel built without io_uring"
                : e.errno() == Errno.EPERM ? "io_uring not permitted (sysctl io_uring_disabled or seccomp)"
                : "io_uring setup refused";
        return meaning + ": " + e.getMessage();
    }
}
