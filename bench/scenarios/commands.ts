import { commandStats, statsDelta } from '../../test/helpers/redis.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import { CountingProxy } from '../lib/proxy.js';
import type { Results } from '../lib/results.js';

/**
 * Point 4: Redis commands per fresh run and per replay, from `INFO commandstats` deltas, and
 * round trips, counted as client writes by a proxy with one run in flight at a time.
 */
export async function commandsPerRun(context: BenchContext, results: Results): Promise<void> {
  const runs = context.quick ? 50 : 1_000;
  const port = Number(new URL(context.redisUrl).port);
  const proxy = await CountingProxy.start(port);
  try {
    for (const [name, factory] of context.subjects) {
      const subject = await factory(proxy.url, freshNamespace('commands'));
      const tick = context.progress.step(`commands per run: ${name}`, 2 * runs);
      try {
        // Connections, scripts and the first subscription happen here, outside the count.
        for (let i = 0; i < 10; i++)
          await subject.run(`warm-${i}`, async () => payload(`warm-${i}`));
        for (const kind of ['fresh', 'replay'] as const) {
          const before = await commandStats(context.admin);
          proxy.reset();
          for (let i = 0; i < runs; i++) {
            await subject.run(`c-${i}`, async () => payload(`c-${i}`));
            tick();
          }
          const writes = proxy.writes;
          const delta = statsDelta(before, await commandStats(context.admin));
          delta.info = (delta.info ?? 1) - 1;
          const perRun: Record<string, number> = {};
          for (const [command, calls] of Object.entries(delta)) {
            if (calls > 0) perRun[command] = calls / runs;
          }
          results.commands.push({
            subject: name,
            kind,
            perRun,
            commandsPerRun: Object.values(perRun).reduce((sum, calls) => sum + calls, 0),
            roundTripsPerRun: writes / runs,
          });
        }
      } finally {
        await subject.close();
      }
    }
  } finally {
    await proxy.close();
    await context.admin.flushall();
  }
}
