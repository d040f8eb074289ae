package io.quiesce.sys;

import java.io.IOException;

/**
 * A system call failed. Carries the call's name, the fd it was made on and the errno, and says
 * all three in its message, e.g. {@code "epoll_ctl(fd=7): EEXIST (File exists)"}.
 */
public class SyscallException extends IOException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int fd;
    private final int errno;

    /**
     * @param call the name of the failed call, e.g. {@code "epoll_ctl(ADD)"}
     * @param fd the fd the call was made on, or {@code -1} if none
     * @param errno the (positive) errno value
     */
    public SyscallException(String call, int fd, int errno) {
        super(call + (fd >= 0 ? "(fd=" + fd + ")" : "()") + ": "
                + Errno.name(errno) + " (" + Errno.message(errno) + ")");
        this.call = call;
        this.fd = fd;
        this.errno = errno;
    }

    /** {@return the name of the call that failed} */
    public String call() {
        return call;
    }

    /** {@return the fd the call was made on, or -1} */
    public int fd() {
        return fd;
    }

    /** {@return the (positive) errno value} */
    public int errno() {
        return errno;
    }

    /** {@return the symbolic errno name, e.g. "EPIPE"} */
    public String errnoName() {
        return Errno.name(errno);
    }
}
