/**
 * io_uring through FFM, without liburing (its helpers are {@code static inline}): the kernel's
 * uapi structs from the generated bindings, {@code io_uring_setup}/{@code enter}/{@code register}
 * through {@code syscall(2)}, the rings as mapped segments.
 *
 * <ul>
 *   <li><b>Owns.</b> {@link io.quiesce.uring.Ring} is one ring, its mappings and its fd, and
 *       fills SQEs without policy (the socket opcodes included: accept, connect, recv, send,
 *       sendmsg, cancel, close, shutdown, msg_ring, poll); {@link io.quiesce.uring.BufferRing} a
 *       provided buffer ring registered on a ring (its memory is the caller's arena's);
 *       {@link io.quiesce.uring.UringCalls} the raw calls; {@link io.quiesce.uring.UringSupport}
 *       the availability checks and the setup-flag fallback; {@link io.quiesce.uring.TransportRing} the
 *       io_uring transport's ring (owners' socket ops by slot+generation+op token, one
 *       {@code EPOLL_WAIT} kept in flight, one enter per round, stale CQEs dropped);
 *       {@link io.quiesce.uring.EpollBatch}
 *       the seed's batched {@code epoll_ctl} + {@code epoll_wait} in one enter, the first user.</li>
 *   <li><b>Threads.</b> A ring belongs to the thread that created it (a reactor thread): it is
 *       set up {@code SINGLE_ISSUER | DEFER_TASKRUN} where the kernel allows, so no other thread
 *       may submit, and completion work runs only inside that thread's {@code io_uring_enter}.</li>
 *   <li><b>Guarantees.</b> Every opcode is probed ({@code IORING_REGISTER_PROBE}) before use;
 *       failures name the call and errno; the ring fd is close-on-exec; nothing is logged here
 *       (a caller that falls back logs the reason once). Not exported: no compatibility promise.</li>
 * </ul>
 */
package io.quiesce.uring;
