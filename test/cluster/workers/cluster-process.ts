// The test side of cluster-worker.ts: start a worker process, send it commands, read its events.
import { randomBytes } from 'node:crypto';
import { WorkerLog } from '../../helpers/json-lines.js';
import { startWorker, type Worker } from '../../helpers/processes.js';
import type { ClusterWorkerCommand, ClusterWorkerConfig, ClusterWorkerEvent } from './protocol.js';

const WORKER_SCRIPT = new URL('./cluster-worker.ts', import.meta.url);
const running = new Set<ClusterProcess>();

export type ResultEvent = Extract<ClusterWorkerEvent, { event: 'result' }>;
export type StartedEvent = Extract<ClusterWorkerEvent, { event: 'started' }>;

export class ClusterProcess {
  private readonly log: WorkerLog<ClusterWorkerEvent>;

  private constructor(readonly worker: Worker) {
    this.log = new WorkerLog<ClusterWorkerEvent>(worker);
  }

  get pid(): number {
    return this.worker.child.pid ?? -1;
  }

  /** Starts `count` workers and waits until each has connected to the cluster. */
  static async startMany(count: number, config: ClusterWorkerConfig): Promise<ClusterProcess[]> {
    const processes = Array.from({ length: count }, () => {
      const started = new ClusterProcess(startWorker(WORKER_SCRIPT, [JSON.stringify(config)]));
      running.add(started);
      return started;
    });
    await Promise.all(
      processes.map((process) => process.log.waitFor((line) => line.event === 'ready', 1, 30_000)),
    );
    return processes;
  }

  /** Sends a run command; returns its id. */
  run(command: Omit<Extract<ClusterWorkerCommand, { op: 'run' }>, 'op' | 'id'>): string {
    const id = randomBytes(4).toString('hex');
    this.worker.send({ ...command, op: 'run', id });
    return id;
  }

  open(gate: string): void {
    this.worker.send({ op: 'open', gate });
  }

  /** Waits for the results of the `count` calls of run `id`. */
  async results(id: string, count = 1, timeoutMs = 30_000): Promise<ResultEvent[]> {
    return (await this.log.waitFor(
      (line) => line.event === 'result' && line.id === id,
      count,
      timeoutMs,
    )) as ResultEvent[];
  }

  /** Waits for fn of run `id` to start in this process. */
  async started(id: string, timeoutMs = 30_000): Promise<StartedEvent> {
    const [line] = await this.log.waitFor(
      (candidate) => candidate.event === 'started' && candidate.id === id,
      1,
      timeoutMs,
    );
    return line as StartedEvent;
  }

  /** Every `started` event this process printed so far (fn executions here). */
  executions(): StartedEvent[] {
    return this.log.filter((line) => line.event === 'started') as StartedEvent[];
  }

  /** SIGKILLs the worker by pid and waits for it to be gone. */
  async kill(): Promise<void> {
    running.delete(this);
    const child = this.worker.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    const gone = this.worker.exited;
    this.worker.kill('SIGKILL');
    await gone;
  }

  /** Asks the worker to exit; kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    running.delete(this);
    const child = this.worker.child;
    if (child.exitCode !== null || child.signalCode !== null) return;
    this.worker.send({ op: 'exit' });
    const stopped = await Promise.race([
      this.worker.exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    if (!stopped) await this.kill();
  }
}

/** Stops every worker still running (for `after` / `afterEach` hooks). */
export async function stopAllClusterProcesses(): Promise<void> {
  await Promise.all([...running].map((process) => process.stop()));
}
