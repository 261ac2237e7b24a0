import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { commandStats, statsDelta } from '../../test/helpers/redis.js';
import type { BenchContext } from '../lib/context.js';
import { freshNamespace } from '../lib/context.js';
import { percentile } from '../lib/load.js';
import type { Results } from '../lib/results.js';
import type { CallerOutcome } from '../workers/waiter-rounds.js';

const WORKER = fileURLToPath(new URL('../workers/waiter.ts', import.meta.url));
const PROCESSES = 2;
const FN_MS = 200;

/**
 * Point 3: one key, fn takes 200 ms, N duplicate callers split over two processes, all calling at
 * once. For each caller that got the value without running fn: the delay from the end of the
 * winner's fn to its resolution; and the Redis commands of the whole round per caller.
 */
export async function waiters(context: BenchContext, results: Results): Promise<void> {
  const counts = context.quick ? [10, 100] : [10, 100, 1000];
  const rounds = context.quick ? 1 : 3;
  for (const [name] of context.subjects) {
    const namespace = freshNamespace('waiters');
    const workers = await Promise.all(
      Array.from({ length: PROCESSES }, () => startWorker(name, context.redisUrl, namespace)),
    );
    try {
      for (const total of counts) {
        const tick = context.progress.step(`waiters: ${name}, ${total} callers`, rounds);
        const delays: number[] = [];
        let rejected = 0;
        let failed = 0;
        let executions = 0;
        let commands = 0;
        for (let round = 0; round < rounds; round++) {
          const before = await commandStats(context.admin);
          const key = `w${total}-${round}`;
          const outcomes = (
            await Promise.all(
              workers.map((worker, index) =>
                roundOn(
                  worker,
                  key,
                  Math.floor(total / PROCESSES) + (index < total % PROCESSES ? 1 : 0),
                ),
              ),
            )
          ).flat();
          const delta = statsDelta(before, await commandStats(context.admin));
          // The INFO call of `before` is counted in the delta; leave it out.
          delta.info = (delta.info ?? 1) - 1;
          commands += Object.values(delta).reduce((sum, calls) => sum + calls, 0);
          for (const outcome of outcomes) {
            if (outcome.kind === 'winner') executions++;
            else if (outcome.kind === 'value') delays.push(outcome.delayMs ?? Number.NaN);
            else if (outcome.kind === 'in-progress') rejected++;
            else failed++;
          }
          tick();
        }
        delays.sort((a, b) => a - b);
        results.waiters.push({
          subject: name,
          waiters: total,
          processes: PROCESSES,
          p50Ms: percentile(delays, 0.5),
          p99Ms: percentile(delays, 0.99),
          maxMs: delays.length === 0 ? Number.NaN : (delays[delays.length - 1] as number),
          settled: delays.length + executions,
          rejected,
          failed,
          commandsPerCaller: commands / (total * rounds),
          executions,
        });
      }
    } finally {
      await Promise.all(workers.map(closeWorker));
      await context.admin.flushall();
    }
  }
}

async function startWorker(
  subject: string,
  redisUrl: string,
  namespace: string,
): Promise<ChildProcess> {
  const worker = fork(WORKER, [subject, redisUrl, namespace], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const [message] = (await once(worker, 'message')) as [{ type: string }];
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
