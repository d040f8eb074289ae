package io.quiesce.sys;

import java.net.SocketTimeoutException;

/**
 * A timeout Quiesce measured itself (connect, read idle, write stall, close drain): no call
 * failed, so the errno is {@code ETIMEDOUT}, the kernel's word for its own timeouts. Stackless:
 * it is raised by a reactor timer, whose stack says nothing about the caller. Made only by
 * {@link Errno#timedOut}; see {@link SyscallFailure}.
 */
final class TimedOutException extends SocketTimeoutException implements SyscallFailure {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final int fd;
    private final String what;

    TimedOutException(String call, int fd, String what) {
        this.call = call;
        this.fd = fd;
        this.what = what;
    }

    @Override
    public String getMessage() {
        return Errno.callAndFd(call, fd) + ": timed out: " + what;
    }

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
        return Errno.ETIMEDOUT;
    }
}
