import { IdempotentExecutor, MemoryStore } from 'idempotent-executor';
import { type Contender, compare } from '../lib/compare.js';
import { type BenchContext, payload } from '../lib/context.js';
import type { Results } from '../lib/results.js';

/**
 * Point 8: the executor on `MemoryStore`, so the cost of our own code shows apart from Redis:
 * replays, then fresh runs, at concurrency 64, each beside the bench's own loop calling fn directly.
 */
export async function inProcess(context: BenchContext, results: Results): Promise<void> {
  const executor = new IdempotentExecutor({ store: new MemoryStore() });
  const replayKeys = 10_000;
  for (let i = 0; i < replayKeys; i++) await executor.run(`r-${i}`, async () => payload(`r-${i}`));
  try {
    const baseline: Contender = {
      name: 'baseline: calling fn directly',
      operation: async (_round, i) => payload(`f-${i}`),
    };
    const options = {
      label: 'in-process',
      concurrencies: [64],
      runs: () => (context.quick ? 2_000 : 200_000),
      rounds: context.quick ? 1 : 3,
      warmup: context.quick ? 500 : 20_000,
    };
    // Replays first, apart from the fresh runs: every fresh run leaves a record in the store (as
    // it would for its ttl), and alternating rounds would make the replays pay for collecting
    // the fresh runs' hundreds of thousands of records.
    const replays = await compare(
      context,
      [
        {
          name: 'MemoryStore: replays',
          operation: (_round, i) =>
            executor.run(`r-${i % replayKeys}`, async () => payload('never')),
        },
        baseline,
      ],
      options,
    );
    const fresh = await compare(
      context,
      [
        {
          name: 'MemoryStore: fresh runs',
          operation: (round, i) => {
            const key = `f${round}-${i}`;
            return executor.run(key, async () => payload(key));
          },
        },
        baseline,
      ],
      options,
    );
    // The baseline once: as measured beside the fresh runs.
    results.inProcess.push(...fresh, ...replays.filter((row) => row.subject !== baseline.name));
  } finally {
    await executor.close();
  }
}
