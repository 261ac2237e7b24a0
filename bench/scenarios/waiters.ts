import { fileURLToPath } from 'node:url';
import { commandStats, statsDelta } from '../../test/helpers/redis.js';
import type { BenchContext } from '../lib/context.js';
import { freshNamespace } from '../lib/context.js';
import type { Results } from '../lib/results.js';
import { WaiterTally, WaiterWorkers } from '../lib/waiter-workers.js';

const WORKER = fileURLToPath(new URL('../workers/waiter.ts', import.meta.url));
const PROCESSES = 2;

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
    const workers = await WaiterWorkers.start(
      WORKER,
      [name, context.redisUrl, namespace],
      PROCESSES,
    );
    try {
      for (const total of counts) {
        const tick = context.progress.step(`waiters: ${name}, ${total} callers`, rounds);
        const tally = new WaiterTally();
        let commands = 0;
        for (let round = 0; round < rounds; round++) {
          const before = await commandStats(context.admin);
          tally.add(await workers.round(`w${total}-${round}`, total));
          const delta = statsDelta(before, await commandStats(context.admin));
          // The INFO call of `before` is counted in the delta; leave it out.
          delta.info = (delta.info ?? 1) - 1;
          commands += Object.values(delta).reduce((sum, calls) => sum + calls, 0);
          tick();
        }
        results.waiters.push(tally.row(name, total, PROCESSES, commands / (total * rounds)));
      }
    } finally {
      await workers.close();
      await context.admin.flushall();
    }
  }
}
