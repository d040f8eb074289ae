/**
 * How a failed system call reaches the user: the errno names and one mapping from errno to
 * exception.
 *
 * <ul>
 *   <li><b>Errors.</b> Every raw call returns {@code -errno} on failure; {@link io.quiesce.sys.Errno}
 *       names it and, where a caller cannot go on, turns it into an exception in one place: a
 *       socket call's into the {@code java.net} type ({@code ConnectException},
 *       {@code BindException}, {@code SocketException}…), any other call's into a
 *       {@link io.quiesce.sys.SyscallException}. Each is a {@link io.quiesce.sys.SyscallFailure}
 *       carrying the call, the fd and the errno.</li>
 *   <li><b>Threads.</b> Everything here is immutable or stateless and safe from any thread.</li>
 * </ul>
 *
 * <p>The downcalls themselves are not part of the API: they live in a package the module does
 * not export.
 */
package io.quiesce.sys;
