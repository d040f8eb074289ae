package io.quiesce.sys;

import java.io.IOException;

/**
 * A system call that is not a socket operation (epoll, eventfd…) failed. Carries the call's
 * name, the fd it was made on and the errno, and says all three in its message, e.g.
 * {@code "epoll_ctl(fd=7): EEXIST (File exists)"}. Socket calls fail with the usual
 * {@code java.net} exceptions instead ({@link Errno#socketException}); every one of them is a
 * {@link SyscallFailure} too.
 */
public class SyscallException extends IOException implements SyscallFailure {
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
        super(Errno.describe(call, fd, errno));
        this.call = call;
        this.fd = fd;
        this.errno = errno;
    }

    /** {@return the name of the call that failed} */
    @Override
    public String call() {
        return call;
    }

    /** {@return the fd the call was made on, or -1} */
    @Override
    public int fd() {
        return fd;
    }

    /** {@return the (positive) errno value} */
    @Override
    public int errno() {
        return errno;
    }
}
