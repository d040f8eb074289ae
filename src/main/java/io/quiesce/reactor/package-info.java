/**
 * The reactor: event loops over epoll, and the handles they own.
 *
 * <ul>
 *   <li><b>Owns.</b> A {@link io.quiesce.reactor.Reactor} is one platform thread that alone owns
 *       one epoll fd, one eventfd, a task queue, timers and its handles. Every
 *       {@code epoll_ctl} on its epoll is made on its thread.</li>
 *   <li><b>Threads.</b> Handlers, tasks and timers run on the reactor thread and must not block.
 *       Any thread may call {@code Reactor.execute}, {@code schedule}, {@code register} and the
 *       {@link io.quiesce.reactor.Handle} methods; they hand work to the reactor through its task
 *       queue and wake it with one eventfd write only when it is parked.</li>
 *   <li><b>Guarantees.</b> After a handle's close future completes no handler runs for that handle
 *       and its fd number may be reused safely; the fd was removed from epoll (DEL before close)
 *       and released exactly once. Every fd Quiesce creates is close-on-exec. EPOLLHUP and
 *       EPOLLERR always reach the handler. A handler that throws closes only its own handle.</li>
 * </ul>
 */
package io.quiesce.reactor;
