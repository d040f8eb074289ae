/**
 * The syscall layer: a table of errno-capturing downcalls and constants, with no policy.
 *
 * <ul>
 *   <li><b>Threads.</b> The method handles are shared; a {@link io.quiesce.sys.Syscalls}
 *       instance (errno capture and scratch memory) belongs to one thread at a time.</li>
 *   <li><b>Errors.</b> Every call returns {@code -errno} on failure; {@link io.quiesce.sys.Errno}
 *       names it and, where a caller cannot go on, turns it into an exception in one place: a
 *       socket call's into the {@code java.net} type ({@code ConnectException},
 *       {@code BindException}, {@code SocketException}…), any other call's into a
 *       {@link io.quiesce.sys.SyscallException}. Each is a {@link io.quiesce.sys.SyscallFailure}
 *       carrying the call, the fd and the errno.</li>
 *   <li><b>Guarantee.</b> Every fd created here is close-on-exec.</li>
 * </ul>
 */
package io.quiesce.sys;
