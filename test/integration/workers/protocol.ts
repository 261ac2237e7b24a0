/**
 * What the tests and `executor-worker.ts` say to each other. The test sends commands as JSON
 * lines on the worker's stdin; the worker prints events as JSON lines on stdout.
 */

/** The worker's command line: one JSON argument. */
export interface WorkerConfig {
  /** The Redis the executors use. */
  readonly redisUrl: string;
  /** The Redis holding the execution counters (the shared one, even when `redisUrl` is not). */
  readonly counterUrl: string;
  readonly namespace: string;
  /** How many executors (each with its own connections) the worker makes; calls go round-robin. */
  readonly executors?: number;
  readonly leaseMs?: number;
  readonly waitTimeoutMs?: number;
  readonly storeTimeoutMs?: number;
  readonly maxRecordBytes?: number;
}

/** What fn returns (or throws) once it has done what {@link FnSpec} asks. */
export type FnResult =
  | { readonly kind: 'value'; readonly value: unknown }
  /** Throws `declinedCard()` (see errors.ts). */
  | { readonly kind: 'declined-card' }
  /** Throws a GatewayTimeoutError (tests pair it with `cacheErrors: false`). */
  | { readonly kind: 'gateway-timeout' }
  /** Returns a value the record codec cannot store. */
  | { readonly kind: 'unencodable'; readonly what: 'function' | 'circular' | 'symbol' };

/** What the fn of a run does, in order. */
export interface FnSpec {
  /** INCR this key (on `counterUrl`) first: counts executions across every process. */
  readonly counterKey?: string;
  /** Ask `ctx.fencingToken()` and print a `fenced` event with it. */
  readonly fence?: boolean;
  /** Print an `aborted` event if `ctx.signal` aborts. */
  readonly watchSignal?: boolean;
  /** Block the event loop synchronously (busy loop) this long, ms. */
  readonly blockMs?: number;
  /** After blocking, wait up to this long for `ctx.signal` to abort, ms. */
  readonly awaitAbortMs?: number;
  /** Wait until the test sends `{ op: 'open', gate }`. */
  readonly gate?: string;
  readonly sleepMs?: number;
  readonly result: FnResult;
}

export type Command =
  | {
      readonly op: 'run';
      readonly id: string;
      readonly key: unknown;
      /** Concurrent calls of `run` this worker makes (default 1). */
      readonly calls?: number;
      readonly fn: FnSpec;
      readonly fingerprint?: unknown;
      readonly leaseMs?: number;
      readonly waitTimeoutMs?: number;
      /** false: `shouldCacheError` returns false for every error. */
      readonly cacheErrors?: boolean;
    }
  | { readonly op: 'open'; readonly gate: string }
  | { readonly op: 'exit' };

/** An error as seen from its process, for comparing errors across processes. */
export interface ErrorDescription {
  readonly constructorName: string | undefined;
  readonly isCardDeclinedError: boolean;
  readonly isIdempotencyError: boolean;
  readonly name: unknown;
  readonly message: unknown;
  readonly code: unknown;
  /** Own enumerable properties, sorted by name. */
  readonly properties: readonly (readonly [string, unknown])[];
  readonly cause: ErrorDescription | { readonly value: unknown } | null;
}

export type WorkerEvent =
  | { readonly event: 'ready'; readonly pid: number }
  | { readonly event: 'started'; readonly id: string; readonly pid: number }
  | { readonly event: 'fenced'; readonly id: string; readonly token: number }
  | { readonly event: 'aborted'; readonly id: string; readonly code: unknown }
  | {
      readonly event: 'finished';
      readonly id: string;
      /** Whether ctx.signal was aborted when fn returned. */
      readonly signalAborted: boolean;
    }
  | {
      readonly event: 'result';
      readonly id: string;
      readonly call: number;
      readonly pid: number;
      readonly ok: true;
      readonly value: unknown;
    }
  | {
      readonly event: 'result';
      readonly id: string;
      readonly call: number;
      readonly pid: number;
      readonly ok: false;
      readonly error: ErrorDescription;
    };

export type ResultEvent = Extract<WorkerEvent, { event: 'result' }>;
