package io.quiesce.sys;

import java.net.BindException;

/** A local address that cannot be had (EADDRINUSE, EADDRNOTAVAIL, EACCES). Made only by {@link Errno}; see {@link SyscallFailure}. */
final class BindFailedException extends BindException implements SyscallFailure {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int fd;
    private final int errno;

    /** @param stack whether to record a stack trace (see {@link Errno#socketException}) */
    BindFailedException(String call, int fd, int errno, boolean stack) {
        this.call = call;
        this.fd = fd;
        this.errno = errno;
        if (stack) {
            super.fillInStackTrace();
        }
    }

    /** Built when asked for: a failure nobody prints costs no string. */
    @Override
    public String getMessage() {
        return Errno.describe(call, fd, errno);
    }

    /** Filled in the constructor when wanted, never by the superclass constructor. */
    @Override
    public synchronized Throwable fillInStackTrace() {
        return this;
    }

    @Override
    public String call() {
        return call;
    }

    @Override
    public int fd() {
        return fd;
    }

    @Override
    public int errno() {
        return errno;
    }
}
