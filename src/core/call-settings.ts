import type { ExecutorOptions, RunOptions } from './options.js';
import { MIN_LEASE_MS, optionalFunction, positiveInteger } from './options.js';

/** Per-call settings after defaults and validation. */
export interface CallSettings {
  readonly ttlMs: number;
  readonly leaseMs: number;
  readonly waitTimeoutMs: number;
  readonly shouldCacheError: (error: unknown) => boolean;
}

/** `options`' own settings over `base`, each checked (the message names the option). */
export function resolveSettings(
  options: RunOptions | ExecutorOptions,
  base: CallSettings,
): CallSettings {
  return {
    ttlMs: options.ttlMs === undefined ? base.ttlMs : positiveInteger('ttlMs', options.ttlMs),
    leaseMs:
      options.leaseMs === undefined
        ? base.leaseMs
        : positiveInteger('leaseMs', options.leaseMs, MIN_LEASE_MS),
    waitTimeoutMs:
      options.waitTimeoutMs === undefined
        ? base.waitTimeoutMs
        : positiveInteger('waitTimeoutMs', options.waitTimeoutMs),
    shouldCacheError: optionalFunction(
      'shouldCacheError',
      options.shouldCacheError,
      base.shouldCacheError,
    ),
  };
}

/** Run options that set nothing: the executor's defaults apply without a copy. */
export const EMPTY_OPTIONS: RunOptions = Object.freeze({});
