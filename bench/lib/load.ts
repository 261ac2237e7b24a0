/** What one closed-loop measurement saw. */
export interface LoadResult {
  /** Operations completed per second of wall time. */
  readonly opsPerSec: number;
  /** Latency percentiles of one operation, in milliseconds. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Operations that rejected (each is counted, and its latency recorded like any other). */
  readonly errors: number;
}

const PROGRESS_BATCH_MASK = 1023;

/**
 * Runs `operation(i)` for i in [0, count) with `concurrency` operations in flight at every moment
 * (closed loop: each of `concurrency` lanes starts its next operation when its last one settles).
 * `onProgress` hears completed operations in batches of 1,024 (by index).
 */
export async function drive(
  count: number,
  concurrency: number,
  operation: (i: number) => Promise<unknown>,
  onProgress?: (done: number) => void,
): Promise<LoadResult> {
  const latencies = new Float64Array(count);
  let next = 0;
  let errors = 0;
  const lane = async (): Promise<void> => {
    for (let i = next++; i < count; i = next++) {
      const started = performance.now();
      try {
        await operation(i);
      } catch {
        errors++;
      }
      latencies[i] = performance.now() - started;
      // Reported in batches: a progress bar update per operation cost the bench measurably.
      if ((i & PROGRESS_BATCH_MASK) === PROGRESS_BATCH_MASK) onProgress?.(PROGRESS_BATCH_MASK + 1);
    }
  };
  const startedAt = performance.now();
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  const seconds = (performance.now() - startedAt) / 1000;
  latencies.sort();
  return {
    opsPerSec: count / seconds,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    errors,
  };
}

/** The `q` quantile (0..1) of ascending `sorted` samples (nearest rank). */
export function percentile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] as number;
}

/** The result whose throughput is the median of `results` (an odd count picks the middle one). */
export function medianResult(results: readonly LoadResult[]): LoadResult {
  const sorted = [...results].sort((a, b) => a.opsPerSec - b.opsPerSec);
  return sorted[Math.floor(sorted.length / 2)] as LoadResult;
}
