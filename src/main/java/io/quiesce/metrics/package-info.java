/**
 * Micrometer metrics for Quiesce's reactors.
 *
 * <ul>
 *   <li><b>Owns.</b> Nothing: {@link io.quiesce.metrics.QuiesceMetrics} registers function meters
 *       that read the counters each reactor keeps anyway, tagged with the group's name, the
 *       reactor's index and the caller's tags, so that several groups share one registry.</li>
 *   <li><b>Threads.</b> Meters are read from whatever thread scrapes the registry; the counters
 *       are single-writer and safe to read from any thread.</li>
 *   <li><b>Guarantees.</b> Binding adds no work to the event path. Micrometer is an optional
 *       dependency: Quiesce runs without it as long as this package is not used.</li>
 * </ul>
 */
package io.quiesce.metrics;
