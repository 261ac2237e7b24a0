/**
 * What the cluster tests ask of `cluster-worker.ts` and what it pushes back, on the shared worker
 * protocol (test/helpers/worker).
 */

/** The worker's command line: one JSON argument. */
export interface ClusterWorkerConfig {
  /** Any node of the cluster; ioredis discovers the others. */
  readonly port: number;
  readonly namespace: string;
  readonly leaseMs?: number;
  readonly waitTimeoutMs?: number;
}

/** One call of `executor.run`; the calls of one run share its `id`. */
export interface ClusterRunRequest {
  readonly id: string;
  readonly key: string;
  /** fn waits until the test opens this gate (`open(gate)`). */
  readonly gate?: string;
  readonly sleepMs?: number;
  /** fn asks `ctx.fencingToken()` first and reports it in its `started` event and value. */
  readonly fence?: boolean;
}

/** What fn returns: which process ran it, and its fencing token when asked for one. */
export interface ExecutionValue {
  readonly by: number;
  readonly token?: number;
}

export interface ClusterRequests {
  run(request: ClusterRunRequest): ExecutionValue;
}

/** fn of run `id` started in process `pid`. */
export interface StartedEvent {
  readonly event: 'started';
  readonly id: string;
  readonly pid: number;
  readonly token?: number;
}
