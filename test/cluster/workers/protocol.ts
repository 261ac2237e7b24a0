/** What the cluster tests and `cluster-worker.ts` say to each other (JSON lines). */

/** The worker's command line: one JSON argument. */
export interface ClusterWorkerConfig {
  /** Any node of the cluster; ioredis discovers the others. */
  readonly port: number;
  readonly namespace: string;
  readonly leaseMs?: number;
  readonly waitTimeoutMs?: number;
}

export type ClusterWorkerCommand =
  | {
      readonly op: 'run';
      readonly id: string;
      readonly key: string;
      /** Concurrent calls of `run` in this process (default 1). */
      readonly calls?: number;
      /** fn waits until the test sends `{ op: 'open', gate }`. */
      readonly gate?: string;
      readonly sleepMs?: number;
      /** fn asks `ctx.fencingToken()` first and reports it in its `started` event and value. */
      readonly fence?: boolean;
    }
  | { readonly op: 'open'; readonly gate: string }
  | { readonly op: 'exit' };

/** What fn returns: which process ran it, and its fencing token when asked for one. */
export interface ExecutionValue {
  readonly by: number;
  readonly token?: number;
}

export type ClusterWorkerEvent =
  | { readonly event: 'ready'; readonly pid: number }
  | {
      readonly event: 'started';
      readonly id: string;
      readonly pid: number;
      readonly token?: number;
    }
  | {
      readonly event: 'result';
      readonly id: string;
      readonly pid: number;
      readonly ok: true;
      readonly value: ExecutionValue;
    }
  | {
      readonly event: 'result';
      readonly id: string;
      readonly pid: number;
      readonly ok: false;
      readonly code: string | undefined;
      readonly message: string;
    };
