// Process memory over many runs (bench/scenarios/process-memory.ts), in a process of its own
// started with --expose-gc: argv = 'executor' | 'raw', Redis URL, runs, samples. Runs fresh runs
// at concurrency 64 (one in ten is a replay of an earlier key) and, `samples` times along the way,
// collects garbage and reports the heap as a JSON line: { runs, heapUsedMB, rssMB }.

import { IdempotentExecutor } from 'idempotent-executor';
import { Redis } from 'ioredis';
import { payload } from '../lib/context.js';
import { drive } from '../lib/load.js';

const [mode = 'executor', redisUrl = '', runsArg = '0', samplesArg = '10'] = process.argv.slice(2);
const runs = Number(runsArg);
const samples = Number(samplesArg);
const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error('run with --expose-gc');

const client = new Redis(redisUrl);
const executor = new IdempotentExecutor({ redis: client, namespace: `heap-${process.pid}` });
const raw = new Redis(redisUrl, { protocol: 2, enableAutoPipelining: true });

const run = (i: number): Promise<unknown> => {
  const key = `k${i % 10 === 9 ? i - 5 : i}`;
  if (mode === 'executor') return executor.run(key, async () => payload(key));
  return raw
    .set(`raw:{${key}}`, 'lease-token', 'PX', 10_000, 'NX')
    .then(() => raw.set(`raw:{${key}}`, JSON.stringify(payload(key)), 'PX', 86_400_000));
};

const report = (done: number) => {
  gc();
  const { heapUsed, rss } = process.memoryUsage();
  process.stdout.write(
    `${JSON.stringify({ runs: done, heapUsedMB: heapUsed / 2 ** 20, rssMB: rss / 2 ** 20 })}\n`,
  );
};

const step = Math.ceil(runs / samples);
await drive(1_000, 64, (i) => run(runs + i));
report(0);
for (let done = 0; done < runs; done += step) {
  await drive(step, 64, (i) => run(done + i));
  report(done + step);
}
await executor.close();
client.disconnect();
raw.disconnect();
