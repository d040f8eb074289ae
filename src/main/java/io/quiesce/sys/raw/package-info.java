/**
 * The raw syscall layer, inside the module only: a table of errno-capturing downcalls and
 * constants with no policy, and the socket address codec.
 *
 * <ul>
 *   <li><b>Threads.</b> The method handles are shared; a {@link io.quiesce.sys.raw.Syscalls}
 *       instance (errno capture and scratch memory) belongs to one thread at a time.</li>
 *   <li><b>Errors.</b> Every call returns {@code -errno} on failure, as a value; callers hand what
 *       they cannot handle to {@link io.quiesce.sys.Errno}, the one mapping to exceptions.</li>
 *   <li><b>Guarantee.</b> Every fd created here is close-on-exec.</li>
 * </ul>
 *
 * <p>Calls only tests make (spawning a child, raising the fd limit, timerfd) are not here: they
 * live in a test-side table that reuses this package's downcall builders.
 */
package io.quiesce.sys.raw;
