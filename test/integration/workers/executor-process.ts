// The test side of executor-worker.ts: start worker processes, run calls there, read their events.
import { randomBytes } from 'node:crypto';
import { allReady, WorkerProcess } from '../../helpers/worker/parent.js';
import type { Settled } from '../../helpers/worker/protocol.js';
import type { ExecutorEvent, ExecutorRequests, RunRequest, WorkerConfig } from './protocol.js';

const WORKER_SCRIPT = new URL('./executor-worker.ts', import.meta.url);

/** What one call of a run got, in worker `pid`. */
export type RunResult = {
  readonly id: string;
  readonly call: number;
  readonly pid: number;
} & Settled<unknown>;

type EventOf<Name extends ExecutorEvent['event']> = Extract<ExecutorEvent, { event: Name }>;

export class ExecutorProcess extends WorkerProcess<ExecutorRequests, ExecutorEvent> {
  /** The outcomes of each run's calls, by run id. */
  private readonly runs = new Map<string, Promise<Settled<unknown>>[]>();

  /** Starts `count` workers at the same time and waits until each has made its executors. */
  static startMany(count: number, config: WorkerConfig): Promise<ExecutorProcess[]> {
    return allReady(
      Array.from({ length: count }, () => new ExecutorProcess(WORKER_SCRIPT, config)),
    );
  }

  /** Starts `calls` (default 1) concurrent calls of `executor.run`; returns the run's id. */
  run(command: Omit<RunRequest, 'id' | 'call'> & { id?: string; calls?: number }): string {
    const { id = randomBytes(4).toString('hex'), calls = 1, ...request } = command;
    const outcomes = Array.from({ length: calls }, (_, call) =>
      this.settle('run', { ...request, id, call }),
    );
    this.runs.set(id, outcomes);
    return id;
  }

  /** Waits for the results of the first `count` calls of run `id`. */
  async results(id: string, count = 1, timeoutMs = 20_000): Promise<RunResult[]> {
    const outcomes = (this.runs.get(id) ?? []).slice(0, count);
    const settled = await this.within(Promise.all(outcomes), timeoutMs, `results of run ${id}`);
    return settled.map((outcome, call) => ({ id, call, pid: this.pid, ...outcome }));
  }

  /** Waits for the first event of `event` kind about run `id`. */
  async event<Name extends ExecutorEvent['event']>(
    event: Name,
    id: string,
    timeoutMs = 20_000,
  ): Promise<EventOf<Name>> {
    const [line] = await this.waitFor(aboutRun(event, id), 1, timeoutMs);
    return line as EventOf<Name>;
  }

  /** Events of `event` kind about run `id` pushed so far. */
  eventsOf<Name extends ExecutorEvent['event']>(event: Name, id: string): EventOf<Name>[] {
    return this.filter(aboutRun(event, id));
  }
}

function aboutRun<Name extends ExecutorEvent['event']>(event: Name, id: string) {
  return (line: ExecutorEvent): line is EventOf<Name> => line.event === event && line.id === id;
}
