package io.quiesce.sys;

/**
 * What every exception Quiesce makes from an errno carries, whatever its type: the call, the fd
 * and the errno.
 *
 * <p>Socket failures are the {@code java.net} exceptions a Java developer already catches
 * ({@link java.net.ConnectException}, {@link java.net.BindException},
 * {@link java.net.NoRouteToHostException}, {@link java.net.SocketTimeoutException},
 * {@link java.net.SocketException}); other calls (epoll, eventfd) fail with a
 * {@link SyscallException}. Each of them also implements this interface, so the kernel's own
 * words are one {@code instanceof} away:
 *
 * <pre>{@code
 * try {
 *     connection = Client.connect(reactor, address, handler).get();
 * } catch (ExecutionException x) {
 *     if (x.getCause() instanceof ConnectException e
 *             && e instanceof SyscallFailure f && f.errno() == Errno.ECONNREFUSED) { ... }
 * }
 * }</pre>
 *
 * <p>or, around {@code Server.bind}:
 *
 * <pre>{@code
 * try {
 *     server = Server.bind(group, address, handlers);
 * } catch (BindException e) {
 *     log.warn("port taken: " + ((SyscallFailure) e).errnoName()); // EADDRINUSE
 * }
 * }</pre>
 *
 * <p>Why an interface and not a {@code SyscallException} cause: Java has no multiple
 * inheritance, so one class cannot be both a {@code ConnectException} and a
 * {@code SyscallException}; a cause would mean two objects per failure and a
 * {@code getCause()} cast to reach the errno. A small subclass of each {@code java.net} type
 * implementing this interface is one object, caught by its usual type, with the errno on it.
 */
public interface SyscallFailure {
    /** {@return the name of the call that failed, e.g. {@code "connect"} or {@code "epoll_ctl(ADD)"}} */
    String call();

    /** {@return the fd the call was made on, or -1 if none} */
    int fd();

    /**
     * {@return the (positive) errno value} For a timeout Quiesce measured itself (a connect or
     * idle timeout) no call failed: it is {@link Errno#ETIMEDOUT}, as the kernel says for its own.
     */
    int errno();

    /** {@return the symbolic errno name, e.g. {@code "EPIPE"}} */
    default String errnoName() {
        return Errno.name(errno());
    }
}
