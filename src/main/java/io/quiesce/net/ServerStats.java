package io.quiesce.net;

/**
 * A snapshot of a {@link Server}'s accept counters, summed over its listening sockets.
 *
 * @param accepted connections accepted
 * @param fdExhaustion times {@code accept4} failed with EMFILE, ENFILE, ENOBUFS or ENOMEM and the
 *        listener backed off instead of spinning
 * @param acceptErrors other {@code accept4} failures that made the listener back off
 * @param backingOff listening sockets not accepting right now (backing off)
 */
public record ServerStats(long accepted, long fdExhaustion, long acceptErrors, int backingOff) {}
