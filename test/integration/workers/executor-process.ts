// The test side of executor-worker.ts: start a worker process, send it commands, read its events.
import { randomBytes } from 'node:crypto';
import { WorkerLog } from '../../helpers/json-lines.js';
import { startWorker, type Worker } from '../../helpers/processes.js';
import type { Command, ResultEvent, WorkerConfig, WorkerEvent } from './protocol.js';

const WORKER_SCRIPT = new URL('./executor-worker.ts', import.meta.url);

/** Every worker process a test file started, so `after` hooks can stop the ones left. */
const running = new Set<ExecutorProcess>();

export class ExecutorProcess {
  private readonly log: WorkerLog<WorkerEvent>;

  private constructor(
    readonly worker: Worker,
    readonly pid: number,
  ) {
    this.log = new WorkerLog<WorkerEvent>(worker);
  }

  /** Starts a worker and waits until it has made its executors. */
  static async start(config: WorkerConfig): Promise<ExecutorProcess> {
    const worker = startWorker(WORKER_SCRIPT, [JSON.stringify(config)]);
    const process = new ExecutorProcess(worker, worker.child.pid ?? -1);
    running.add(process);
    await process.waitFor((line) => line.event === 'ready', 1, 30_000);
    return process;
  }

  /** Starts `count` workers at the same time. */
  static startMany(count: number, config: WorkerConfig): Promise<ExecutorProcess[]> {
    return Promise.all(Array.from({ length: count }, () => ExecutorProcess.start(config)));
  }

  /** Sends a run command; returns its id (fresh unless given). */
  run(command: Omit<Extract<Command, { op: 'run' }>, 'op' | 'id'> & { id?: string }): string {
    const id = command.id ?? randomBytes(4).toString('hex');
    this.worker.send({ ...command, op: 'run', id });
    return id;
  }

  open(gate: string): void {
    this.worker.send({ op: 'open', gate });
  }

  waitFor(
    predicate: (line: WorkerEvent) => boolean,
    count = 1,
    timeoutMs = 20_000,
  ): Promise<WorkerEvent[]> {
    return this.log.waitFor(predicate, count, timeoutMs);
  }

  /** Waits for the first event of `event` kind about run `id`. */
  async event<E extends WorkerEvent['event']>(
    event: E,
    id: string,
    timeoutMs = 20_000,
  ): Promise<Extract<WorkerEvent, { event: E }>> {
    const [line] = await this.waitFor(
      (candidate) => candidate.event === event && 'id' in candidate && candidate.id === id,
      1,
      timeoutMs,
    );
    return line as Extract<WorkerEvent, { event: E }>;
  }

  /** Waits for the results of the `count` calls of run `id`. */
  async results(id: string, count = 1, timeoutMs = 20_000): Promise<ResultEvent[]> {
    const lines = await this.waitFor(
      (line) => line.event === 'result' && line.id === id,
      count,
      timeoutMs,
    );
    return lines as ResultEvent[];
  }

  /** Events of `event` kind about run `id` printed so far. */
  events<E extends WorkerEvent['event']>(
    event: E,
    id: string,
  ): Extract<WorkerEvent, { event: E }>[] {
    return this.log.filter(
      (line) => line.event === event && 'id' in line && line.id === id,
    ) as Extract<WorkerEvent, { event: E }>[];
  }

  get exited(): boolean {
    return this.worker.child.exitCode !== null || this.worker.child.signalCode !== null;
  }

  /** SIGKILLs the worker by pid and waits for it to be gone. */
  async kill(): Promise<void> {
    running.delete(this);
    if (this.exited) return;
    const gone = this.worker.exited;
    this.worker.kill('SIGKILL');
    await gone;
  }

  /** Asks the worker to close its executors and exit; kills it if it has not within 5 s. */
  async stop(): Promise<void> {
    running.delete(this);
    if (this.exited) return;
    this.worker.send({ op: 'exit' });
    const stopped = await Promise.race([
      this.worker.exited.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 5_000).unref()),
    ]);
    if (!stopped) await this.kill();
  }
}

/** Stops every worker still running (for `after` / `afterEach` hooks). */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...running].map((process) => process.stop()));
}
