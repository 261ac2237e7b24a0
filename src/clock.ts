/**
 * Milliseconds on a monotonic clock (`performance.now()`): it never steps when the wall clock is
 * set (NTP, a VM resumed, an operator). Lease validity, renewal timing and wait bounds are
 * counted on it, so a step of the wall clock can never make an owner believe its lease runs
 * longer than the store does. Timestamps that are stored or shown (a record's `startedAt`) stay
 * on the wall clock.
 */
export function monotonicNow(): number {
  return performance.now();
}
