import { MIN_LEASE_MS, type RunOptions } from '../../index.js';
import { functionOption, integerOption } from '../edge/index.js';

/**
 * Per-run settings shared by {@link MessageGuard} and `idempotentProcessor`. Each one given (or
 * defaulted here) overrides the executor's own setting for the runs of this adapter.
 */
export interface JobRunSettings {
  /**
   * Lease on a running job or message, ms; the executor renews it every third of its length for
   * as long as the work runs, and aborts the work's `ctx.signal` when a renewal fails. After a
   * worker dies mid-work, another worker takes the job over once this much time has passed.
   *
   * Keep it at or below BullMQ's `lockDuration` (30 s unless changed): BullMQ hands a job whose
   * lock expired to another worker, and that worker should find the lease expired too, not wait
   * for it. Keep it above the longest pause of the event loop, or a healthy worker loses it.
   * @defaultValue `30_000` (BullMQ's default `lockDuration`; also SQS's default visibility timeout)
   */
  readonly leaseMs?: number;
  /**
   * How long a duplicate waits for the execution running elsewhere (a second job with the same
   * business key, or a redelivery while a lease is still held), ms. When it runs out the run
   * fails with `IDEMPOTENCY_WAIT_TIMEOUT`, which fails the job or message so the broker retries.
   * @defaultValue `60_000` (twice the default lease: a waiter outlives a dead worker's lease)
   */
  readonly waitTimeoutMs?: number;
  /**
   * How long a completed result is kept and replayed, ms. A duplicate that arrives later runs
   * the work again, so keep it longer than the broker may redeliver or a job may be retried.
   * @defaultValue the executor's `ttlMs` (24 hours unless changed)
   */
  readonly ttlMs?: number;
  /**
   * Whether an error the work threw is stored and replayed to later deliveries. Not by default:
   * the key is freed, so BullMQ's `attempts` (or a broker's redelivery) really run the work
   * again. Return true for errors that retrying cannot fix (a declined card, a bad payload).
   * @defaultValue `() => false` (no error is cached)
   */
  readonly shouldCacheError?: (error: unknown) => boolean;
}

/** The defaults of {@link JobRunSettings} that differ from the executor's. */
export const defaultJobRunSettings = Object.freeze({
  leaseMs: 30_000,
  waitTimeoutMs: 60_000,
  shouldCacheError: (_error: unknown): boolean => false,
});

/** The settings validated and turned into the `run()` options every run of an adapter shares. */
export function resolveRunSettings(options: JobRunSettings): RunOptions {
  const defaults = defaultJobRunSettings;
  const settings = {
    leaseMs: integerOption('leaseMs', options.leaseMs, defaults.leaseMs, MIN_LEASE_MS),
    waitTimeoutMs: integerOption('waitTimeoutMs', options.waitTimeoutMs, defaults.waitTimeoutMs),
    shouldCacheError: functionOption(
      'shouldCacheError',
      options.shouldCacheError,
      defaults.shouldCacheError,
    ),
  };
  // No ttlMs given: the executor's own applies.
  if (options.ttlMs === undefined) return Object.freeze(settings);
  return Object.freeze({ ...settings, ttlMs: integerOption('ttlMs', options.ttlMs, 0) });
}
