import { decode, encode } from '@msgpack/msgpack';
import { rawClients } from '../lib/ceiling.js';
import { type Contender, compare, separateRaw } from '../lib/compare.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import { drive } from '../lib/load.js';
import type { Results } from '../lib/results.js';

/**
 * Point 2: replays of completed keys at concurrency 1 and 64, beside a raw loop of `GET` and a
 * msgpack decode of the same ~100-byte value, in every ioredis configuration (fastest kept).
 */
export async function replays(context: BenchContext, results: Results): Promise<void> {
  const namespace = freshNamespace('replay');
  const keys = context.quick ? 200 : 5_000;
  const subjects = await Promise.all(
    [...context.subjects.values()].map((factory) => factory(context.redisUrl, namespace)),
  );
  const raw = rawClients(context.redisUrl);
  try {
    await context.admin.flushall();
    for (const subject of subjects) {
      const tick = context.progress.step(
        `replays: completing ${keys} keys with ${subject.name}`,
        keys,
      );
      const completed = await drive(
        keys,
        16,
        (i) => subject.run(`r-${i}`, async () => payload(`r-${i}`)),
        tick,
      );
      if (completed.errors > 0) throw new Error(`${subject.name} failed to complete keys`);
    }
    for (let i = 0; i < keys; i++) {
      await context.admin.set(`${namespace}:raw:{r-${i}}`, Buffer.from(encode(payload(`r-${i}`))));
    }
    const fnThatMustNotRun = async (): Promise<never> => {
      throw new Error('a replay ran fn');
    };
    const contenders: Contender[] = [
      ...subjects.map((subject) => ({
        name: subject.name,
        operation: (_round: number, i: number) => subject.run(`r-${i % keys}`, fnThatMustNotRun),
      })),
      ...raw.map(({ name, client }) => ({
        name,
        operation: async (_round: number, i: number) => {
          const bytes = await client.getBuffer(`${namespace}:raw:{r-${i % keys}}`);
          if (bytes === null) throw new Error('raw value missing');
          return decode(bytes);
        },
      })),
    ];
    const rows = await compare(context, contenders, {
      label: 'replays',
      concurrencies: [1, 64],
      runs: (concurrency) => (context.quick ? 200 : concurrency === 1 ? 5_000 : 20_000),
      rounds: context.quick ? 1 : 3,
      warmup: context.quick ? 100 : 2_000,
    });
    const split = separateRaw(
      rows,
      new Set(raw.map(({ name }) => name)),
      'baseline (raw GET + decode)',
    );
    results.replayBaselineConfigs.push(...split.configs);
    results.replay.push(...split.subjects, ...split.baseline);
  } finally {
    await Promise.all(subjects.map((subject) => subject.close()));
    for (const { client } of raw) client.disconnect();
    await context.admin.flushall();
  }
}
