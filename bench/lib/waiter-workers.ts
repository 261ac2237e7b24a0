// The parent's side of the waiter processes (bench/workers/waiter-rounds.ts is the child's):
// the waiters scenario and the PostgreSQL scenario's waiters both start a few processes, play
// rounds of duplicate callers on one key across them, and tally what the callers got.
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import type { CallerOutcome } from '../workers/waiter-rounds.js';
import { percentile } from './load.js';
import type { WaiterRow } from './results.js';

/** How long the winner's fn runs in every round, ms. */
export const FN_MS = 200;

/** Waiter processes running one subject, each answering rounds (see waiter-rounds.ts). */
export class WaiterWorkers {
  private constructor(private readonly workers: readonly ChildProcess[]) {}

  /** Starts `processes` copies of `script` with `args`, and waits until each is ready. */
  static async start(script: string, args: string[], processes: number): Promise<WaiterWorkers> {
    return new WaiterWorkers(
      await Promise.all(Array.from({ length: processes }, () => startWorker(script, args))),
    );
  }

  /** One round: `total` callers of `key`, spread evenly over the processes, at one moment. */
  async round(key: string, total: number): Promise<CallerOutcome[]> {
    const { length } = this.workers;
    const outcomes = await Promise.all(
      this.workers.map((worker, index) =>
        roundOn(worker, key, Math.floor(total / length) + (index < total % length ? 1 : 0)),
      ),
    );
    return outcomes.flat();
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map(closeWorker));
  }
}

/** What the callers of some rounds got. */
export class WaiterTally {
  readonly delays: number[] = [];
  rejected = 0;
  failed = 0;
  executions = 0;

  add(outcomes: readonly CallerOutcome[]): void {
    for (const outcome of outcomes) {
      if (outcome.kind === 'winner') this.executions++;
      else if (outcome.kind === 'value') this.delays.push(outcome.delayMs ?? Number.NaN);
      else if (outcome.kind === 'in-progress') this.rejected++;
      else this.failed++;
    }
  }

  /** The report's row for `total` callers a round over `processes` processes. */
  row(subject: string, total: number, processes: number, commandsPerCaller: number): WaiterRow {
    const delays = [...this.delays].sort((a, b) => a - b);
    return {
      subject,
      waiters: total,
      processes,
      p50Ms: percentile(delays, 0.5),
      p99Ms: percentile(delays, 0.99),
      maxMs: delays.length === 0 ? Number.NaN : (delays[delays.length - 1] as number),
      settled: delays.length + this.executions,
      rejected: this.rejected,
      failed: this.failed,
      commandsPerCaller,
      executions: this.executions,
    };
  }
}

async function startWorker(script: string, args: string[]): Promise<ChildProcess> {
  const worker = fork(script, args, {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = once(worker, 'exit').then(([code]) => {
    throw new Error(`waiter worker exited with ${code} before it was ready`);
  });
  const [message] = (await Promise.race([once(worker, 'message'), exited])) as [{ type: string }];
  exited.catch(() => {});
  if (message.type !== 'ready') throw new Error(`waiter worker said ${JSON.stringify(message)}`);
  return worker;
}

async function roundOn(
  worker: ChildProcess,
  key: string,
  callers: number,
): Promise<CallerOutcome[]> {
  const answered = once(worker, 'message') as Promise<[{ outcomes: CallerOutcome[] }]>;
  worker.send({ type: 'round', key, callers, fnMs: FN_MS });
  const [message] = await answered;
  return message.outcomes;
}

async function closeWorker(worker: ChildProcess): Promise<void> {
  if (worker.exitCode !== null) return;
  const exited = once(worker, 'exit');
  worker.send({ type: 'close' });
  const timer = setTimeout(() => worker.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(timer);
}
