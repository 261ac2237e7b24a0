// What the chaos parent (storm.ts) and its workers (worker.ts) say to each other on the shared
// worker protocol (test/helpers/worker): requests the parent sends without waiting, events the
// worker pushes. Every event that is evidence for the report carries the wall-clock time it
// happened (ms since the epoch, sub-ms precision: `now()` of the worker protocol).

/** The store a worker's executor runs on. */
export type WorkerStoreConfig =
  | { readonly kind: 'redis'; readonly url: string }
  /** A Redis Cluster: the nodes a default-configured ioredis `Cluster` starts from. */
  | { readonly kind: 'cluster'; readonly nodes: readonly { host: string; port: number }[] }
  | {
      readonly kind: 'postgres';
      /** The records' database, through the harness's TCP proxy. */
      readonly url: string;
      readonly table: string;
      /** fn runs in `transactional(store, …)` and writes its ledger row in that transaction. */
      readonly transactional: boolean;
    };

/** What a worker is told at start-up (its argv[2], as JSON). */
export interface WorkerConfig {
  /** The worker's slot: a replacement for a killed worker takes the same slot. */
  readonly slot: number;
  readonly store: WorkerStoreConfig;
  /** The execution log's database, reached directly (no fault touches it). */
  readonly pgUrl: string;
  readonly namespace: string;
  /** Callers per key: caller id `i` calls key `k${Math.floor(i / dups)}`. */
  readonly dups: number;
  readonly leaseMs: number;
  readonly waitTimeoutMs: number;
  readonly storeTimeoutMs: number;
  /** How many callers the worker keeps in flight at once. */
  readonly concurrency: number;
  /** How long a lane waits after a caller got IDEMPOTENCY_STORE_UNAVAILABLE; 0: not at all. */
  readonly unavailableBackoffMs: number;
  /** fn sleeps a random time in [fnMinMs, fnMaxMs] before it writes its ledger row. */
  readonly fnMinMs: number;
  readonly fnMaxMs: number;
  /** Every this many ms the worker reports its heap and RSS (`memory`); 0: never. */
  readonly sampleMs: number;
}

/** A fault the parent arms in a worker; it lands at the next execution of fn there. */
export type ArmedFault =
  | { readonly kind: 'kill-mid' }
  | { readonly kind: 'kill-after' }
  | { readonly kind: 'stall'; readonly ms: number }
  /**
   * fn says `holding` and keeps running `ms` more: the parent partitions the worker meanwhile,
   * so the partition lands while fn runs (the `partition` server fault).
   */
  | { readonly kind: 'hold'; readonly ms: number };

/** The requests a worker answers; the parent never waits for their replies. */
export interface WorkerRequests {
  /**
   * The caller ids to run, in order; with `until` (ms since the epoch), started at an even pace
   * from now until then instead of as fast as the lanes go (a soak).
   */
  start(request: { readonly callers: readonly number[]; readonly until?: number }): void;
  arm(request: { readonly fault: ArmedFault }): void;
  /** Close everything, report leaks, exit. */
  finish(request: Record<string, never>): void;
}

/** The value fn returns: unique to one execution, so replays show which execution they saw. */
export interface ChaosValue {
  readonly key: string;
  readonly token: number;
}

export type WorkerEvent =
  | {
      readonly event: 'settled';
      readonly id: number;
      readonly key: string;
      readonly pid: number;
      /** When run() was called and when it settled. */
      readonly t0: number;
      readonly t1: number;
      /** The fencing token of the value received; absent for an error. */
      readonly token?: number;
      /** The error's `code` (or name); absent for a value. */
      readonly code?: string;
      /** For IDEMPOTENCY_LEASE_LOST: the token of this process's own execution of the key. */
      readonly ownToken?: number;
    }
  /** Printed (synchronously) just before the worker SIGKILLs itself. */
  | {
      readonly event: 'dying';
      readonly phase: 'mid-fn' | 'after-fn';
      readonly key: string;
      readonly token: number;
      readonly t: number;
    }
  | {
      readonly event: 'stall-start';
      readonly key: string;
      readonly token: number;
      readonly t: number;
    }
  | {
      readonly event: 'stall-end';
      readonly key: string;
      readonly token: number;
      readonly t: number;
    }
  | { readonly event: 'holding'; readonly key: string; readonly token: number; readonly t: number }
  /** The executor's own `lease-lost` / `store-failed` events. */
  | { readonly event: 'lease-lost'; readonly key: string; readonly t: number }
  | { readonly event: 'store-failed'; readonly key: string; readonly t: number }
  /** An `executed` event of fn failing with an error not kept: the executor freed the key. */
  | { readonly event: 'released'; readonly key: string; readonly t: number }
  | { readonly event: 'unhandled'; readonly kind: string; readonly message: string }
  | { readonly event: 'drained' }
  /** The worker's memory (`process.memoryUsage()`), bytes. */
  | {
      readonly event: 'memory';
      readonly t: number;
      readonly heapUsed: number;
      readonly rss: number;
    }
  | {
      readonly event: 'closed';
      /** Active resources left after everything was closed, beyond those present at start. */
      readonly leaked: readonly string[];
      /** Faults armed here that never landed. */
      readonly unlanded: readonly ArmedFault['kind'][];
    };

/** The key caller `id` calls. */
export function keyOfCaller(id: number, dups: number): string {
  return `k${Math.floor(id / dups)}`;
}

/**
 * The name a worker gives its store connections (Redis `connectionName`, PostgreSQL
 * `application_name`), by which the parent finds them to kill them.
 */
export function workerName(slot: number, pid: number): string {
  return `chaos-w${slot}-${pid}`;
}
