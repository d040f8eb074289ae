/**
 * TCP on the reactor: servers ({@link io.quiesce.net.Server}), client connect
 * ({@link io.quiesce.net.Client}) and connections ({@link io.quiesce.net.Connection}) driven by a
 * {@link io.quiesce.net.ConnectionHandler}.
 *
 * <ul>
 *   <li><b>Threads.</b> Every handler callback runs on the connection's reactor thread, one at a
 *       time, and must not block. {@link io.quiesce.net.Connection#write},
 *       {@code shutdownOutput}, {@code close}, {@code abort}, {@code pauseReading} and
 *       {@code resumeReading} may be called from any thread: off the reactor they are handed to it
 *       through its task queue (a write is copied first). Writes from one thread keep their
 *       order.</li>
 *   <li><b>Owns.</b> A connection owns its socket through a {@link io.quiesce.reactor.Handle}
 *       registered once, edge-triggered, for read, write and peer-closed; it never changes its
 *       epoll interest. Reads land in its reactor's one read buffer; queued writes live in pooled
 *       off-heap chunks ({@link io.quiesce.buffer.ReactorMemory}). On a reactor running the
 *       io_uring transport ({@code ReactorGroup.Io.URING}) the socket is never in epoll: a
 *       multishot accept, a multishot receive into the reactor's provided buffers and one send in
 *       flight per connection are io_uring ops, each holding a reference on the handle until its
 *       last CQE, so a close cancels them and closes the fd only after every CQE is reaped.</li>
 *   <li><b>Guarantees.</b> The data passed to {@code onRead} is valid only during the call. Writes
 *       are sent with {@code MSG_NOSIGNAL}: a peer that is gone gives EPIPE (the connection closes
 *       with it as the cause), never SIGPIPE. A handler that throws closes only its own
 *       connection. {@code onClose} runs exactly once, after the fd has been released. Accepting
 *       under EMFILE/ENFILE backs off instead of spinning and resumes by itself. A server's port
 *       is its own unless sharing is asked for ({@link io.quiesce.net.ServerOptions#sharedPort()}).
 *       Failures are the {@code java.net} exceptions ({@code ConnectException},
 *       {@code BindException}, {@code SocketException}, {@code SocketTimeoutException}), each a
 *       {@link io.quiesce.sys.SyscallFailure} naming the call, fd and errno.</li>
 *   <li><b>Counts.</b> This layer counts its own events per reactor
 *       ({@link io.quiesce.net.NetStats}: accepts, connections by origin, bytes), single-writer
 *       like the reactor's {@link io.quiesce.reactor.ReactorStats}; a close finished off the reactor
 *       thread after it exited is counted too.</li>
 * </ul>
 */
package io.quiesce.net;
