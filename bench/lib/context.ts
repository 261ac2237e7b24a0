import type { Redis } from 'ioredis';
import type { SubjectFactory } from '../subjects/subject.js';
import type { Progress } from './progress.js';

/** What every scenario gets from the runner. */
export interface BenchContext {
  /** `--quick`: every scenario at a size that takes seconds, for CI. Nothing about speed is checked. */
  readonly quick: boolean;
  /** The redis-server the bench started for itself (so it may FLUSHALL it). */
  readonly redisUrl: string;
  /** A connection to that server for FLUSHALL, INFO and MEMORY USAGE. */
  readonly admin: Redis;
  /** The executor first, then the peers of point 7, by name. */
  readonly subjects: ReadonlyMap<string, SubjectFactory>;
  readonly progress: Progress;
}

/** A ~100-byte result, as a payment provider's answer might be; `key` keeps each one distinct. */
export function payload(key: string): Record<string, unknown> {
  return {
    id: key,
    object: 'charge',
    amount: 1999,
    currency: 'usd',
    status: 'succeeded',
    captured: true,
    created: 1_764_000_000,
  };
}

/** A namespace no earlier run used. */
export function freshNamespace(label: string): string {
  return `bench-${label}-${process.pid}-${Date.now().toString(36)}`;
}
