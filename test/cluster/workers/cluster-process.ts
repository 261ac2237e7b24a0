// The test side of cluster-worker.ts: start worker processes, run calls there, read their events.
import { randomBytes } from 'node:crypto';
import { allReady, WorkerProcess } from '../../helpers/worker/parent.js';
import type { Settled } from '../../helpers/worker/protocol.js';
import type {
  ClusterRequests,
  ClusterRunRequest,
  ClusterWorkerConfig,
  ExecutionValue,
  StartedEvent,
} from './protocol.js';

const WORKER_SCRIPT = new URL('./cluster-worker.ts', import.meta.url);

/** What one call of a run got, in worker `pid`. */
export type ResultEvent = { readonly id: string; readonly pid: number } & Settled<ExecutionValue>;

export class ClusterProcess extends WorkerProcess<ClusterRequests, StartedEvent> {
  /** The outcomes of each run's calls, by run id. */
  private readonly runs = new Map<string, Promise<Settled<ExecutionValue>>[]>();

  /** Starts `count` workers and waits until each has connected to the cluster. */
  static startMany(count: number, config: ClusterWorkerConfig): Promise<ClusterProcess[]> {
    return allReady(Array.from({ length: count }, () => new ClusterProcess(WORKER_SCRIPT, config)));
  }

  /** Starts `calls` (default 1) concurrent calls of `executor.run`; returns the run's id. */
  run(command: Omit<ClusterRunRequest, 'id'> & { calls?: number }): string {
    const { calls = 1, ...request } = command;
    const id = randomBytes(4).toString('hex');
    this.runs.set(
      id,
      Array.from({ length: calls }, () => this.settle('run', { ...request, id })),
    );
    return id;
  }

  /** Waits for the results of the first `count` calls of run `id`. */
  async results(id: string, count = 1, timeoutMs = 30_000): Promise<ResultEvent[]> {
    const outcomes = (this.runs.get(id) ?? []).slice(0, count);
    const settled = await this.within(Promise.all(outcomes), timeoutMs, `results of run ${id}`);
    return settled.map((outcome) => ({ id, pid: this.pid, ...outcome }));
  }

  /** Waits for fn of run `id` to start in this process. */
  async started(id: string, timeoutMs = 30_000): Promise<StartedEvent> {
    const [line] = await this.waitFor((event) => event.id === id, 1, timeoutMs);
    return line as StartedEvent;
  }

  /** Every `started` event this process pushed so far (fn executions here). */
  executions(): StartedEvent[] {
    return [...this.events];
  }
}
