import type { Attributes } from '@opentelemetry/api';
import type { RedisClient } from '../store/redis/client.js';
import type { Store } from '../store/store.js';
import type { ErrorClass } from './record-codec.js';

/** Options of {@link IdempotentExecutor}. Give exactly one of `redis` and `store`. */
export interface ExecutorOptions {
  /**
   * An ioredis `Redis` or `Cluster` client. The executor opens its own two connections from it
   * (`duplicate()`): one for commands, one for subscriptions; it never sends on yours.
   */
  readonly redis?: RedisClient;
  /** Any {@link Store}, e.g. `new MemoryStore()` for a single process. */
  readonly store?: Store;
  /**
   * Prefix of every key the executor writes.
   * @defaultValue `'idem'`
   */
  readonly namespace?: string;
  /**
   * How long a completed record is kept, ms.
   * @defaultValue `86_400_000` (24 hours)
   */
  readonly ttlMs?: number;
  /**
   * Lease on a running execution, ms; renewed every third of it while fn runs. If the owner
   * dies, another caller takes over after at most this long.
   * @defaultValue `10_000`
   */
  readonly leaseMs?: number;
  /**
   * How long a duplicate waits for a running execution before `IDEMPOTENCY_WAIT_TIMEOUT`, ms.
   * @defaultValue `30_000`
   */
  readonly waitTimeoutMs?: number;
  /**
   * Whether an error fn threw is stored and replayed. When it returns false, the callers waiting
   * right now get the error, the key is freed and the next call runs fn again.
   * @defaultValue `() => true` (every error is cached)
   */
  readonly shouldCacheError?: (error: unknown) => boolean;
  /**
   * Error classes rebuilt on replay (matched by exact class, looked up by name). Others come
   * back as `ReplayedError`. The built-in `Error`, `TypeError`, `RangeError`, ... and this
   * library's own errors are always registered.
   * @defaultValue `[]`
   */
  readonly errorClasses?: readonly ErrorClass[];
  /**
   * Largest encoded record accepted, bytes; a bigger outcome fails with
   * `IDEMPOTENCY_SERIALIZATION` before anything is stored.
   * @defaultValue `1_048_576` (1 MiB)
   */
  readonly maxRecordBytes?: number;
  /**
   * Upper bound on each Redis command, ms. When Redis does not answer in time the call fails
   * with `IDEMPOTENCY_STORE_UNAVAILABLE` (before fn runs when it is the claim).
   * @defaultValue `2_000`
   */
  readonly storeTimeoutMs?: number;
  /**
   * Replicas that must acknowledge a completed record (Redis `WAIT`) before the caller gets its
   * value. It narrows, not closes, the window in which a failover loses a just-completed
   * record: see `docs/scaling.md`. 0 turns it off.
   * @defaultValue `0`
   */
  readonly replicas?: number;
  /**
   * How long a completion waits for `replicas` acknowledgements, ms. When fewer acknowledge in
   * time the caller still gets its value and an `under-replicated` event is emitted.
   * @defaultValue `1_000`
   */
  readonly replicasTimeoutMs?: number;
  /** Called synchronously for each notable event; for metrics and logs. Errors it throws are ignored. */
  readonly onEvent?: (event: ExecutorEvent) => void;
}

/** Options of one `run()`; the per-call ones override the executor's. */
export interface RunOptions {
  /**
   * Any JSON-like value describing the request (the payload, the parameters). Stored as a hash;
   * a caller whose fingerprint differs from the record's gets `IDEMPOTENCY_KEY_REUSED`.
   * A caller that gives none is not checked.
   */
  readonly fingerprint?: unknown;
  /** Aborts this caller's own wait (`IDEMPOTENCY_ABORTED`); a running execution goes on. */
  readonly signal?: AbortSignal;
  /**
   * false: a duplicate of a running execution fails at once with `IDEMPOTENCY_IN_PROGRESS`.
   * @defaultValue `true`
   */
  readonly wait?: boolean;
  readonly ttlMs?: number;
  readonly leaseMs?: number;
  readonly waitTimeoutMs?: number;
  readonly shouldCacheError?: (error: unknown) => boolean;
  /**
   * Attributes added to this call's `idempotency.run` span when one records (an OpenTelemetry
   * SDK is registered and the span is sampled); the adapters put their conventions' names here.
   */
  readonly attributes?: Attributes | (() => Attributes);
  /**
   * Attributes of the call's value (executed or replayed) added to its span before it ends, e.g.
   * an HTTP status. Only called when the span records; what it throws is ignored.
   */
  readonly resultAttributes?: (value: unknown) => Attributes | undefined;
}

/** What the executor reports through `onEvent`. */
export type ExecutorEvent =
  | {
      readonly type: 'executed';
      readonly key: string;
      readonly ok: boolean;
      readonly cached: boolean;
      readonly durationMs: number;
    }
  | {
      readonly type: 'replayed';
      readonly key: string;
      /** How long the caller waited for another execution to finish; 0 when it had finished. */
      readonly waitedMs: number;
    }
  | { readonly type: 'joined'; readonly key: string }
  | { readonly type: 'lease-lost'; readonly key: string }
  | { readonly type: 'store-failed'; readonly key: string; readonly error: unknown }
  | {
      readonly type: 'under-replicated';
      readonly key: string;
      readonly requested: number;
      readonly acknowledged: number;
    };

/** The defaults of {@link ExecutorOptions}. */
export const defaultOptions = Object.freeze({
  namespace: 'idem',
  ttlMs: 86_400_000,
  leaseMs: 10_000,
  waitTimeoutMs: 30_000,
  shouldCacheError: (_error: unknown): boolean => true,
  errorClasses: Object.freeze([]) as readonly ErrorClass[],
  maxRecordBytes: 1_048_576,
  storeTimeoutMs: 2_000,
  replicas: 0,
  replicasTimeoutMs: 1_000,
});

/** The smallest lease accepted, ms: below it renewals could not keep up with round trips. */
export const MIN_LEASE_MS = 100;

export { optionalFunction, positiveInteger } from '../option-checks.js';
