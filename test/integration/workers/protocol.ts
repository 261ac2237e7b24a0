/**
 * What the tests ask of `executor-worker.ts` and what it pushes back, on the shared worker
 * protocol (test/helpers/worker): `run` requests, one per call of `executor.run`, answered with
 * its value or its error; events about what fn did meanwhile.
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
  /** Ask `ctx.fencingToken()` and push a `fenced` event with it. */
  readonly fence?: boolean;
  /** Push an `aborted` event if `ctx.signal` aborts. */
  readonly watchSignal?: boolean;
  /** Block the event loop synchronously (busy loop) this long, ms. */
  readonly blockMs?: number;
  /** After blocking, wait up to this long for `ctx.signal` to abort, ms. */
  readonly awaitAbortMs?: number;
  /** Wait until the test opens this gate (`open(gate)`). */
  readonly gate?: string;
  readonly sleepMs?: number;
  readonly result: FnResult;
}

/** One call of `executor.run`; the calls of one run share its `id`. */
export interface RunRequest {
  readonly id: string;
  /** Which of the run's concurrent calls this is: it picks the executor, round-robin. */
  readonly call: number;
  readonly key: unknown;
  readonly fn: FnSpec;
  readonly fingerprint?: unknown;
  readonly leaseMs?: number;
  readonly waitTimeoutMs?: number;
  /** false: `shouldCacheError` returns false for every error. */
  readonly cacheErrors?: boolean;
}

export interface ExecutorRequests {
  /** Answers with what `executor.run` resolved with, or fails with its error. */
  run(request: RunRequest): unknown;
}

/** Events about the fn of run `id` in this process. */
export type ExecutorEvent =
  | { readonly event: 'started'; readonly id: string; readonly pid: number }
  | { readonly event: 'fenced'; readonly id: string; readonly token: number }
  | { readonly event: 'aborted'; readonly id: string; readonly code: unknown }
  | {
      readonly event: 'finished';
      readonly id: string;
      /** Whether ctx.signal was aborted when fn returned. */
      readonly signalAborted: boolean;
    };
