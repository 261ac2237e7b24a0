import { encode } from '@msgpack/msgpack';
import { Redis } from 'ioredis';
import { rawClients } from '../lib/ceiling.js';
import { type Contender, compare, separateRaw } from '../lib/compare.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import { EXECUTOR_CONNECTION, floorRun } from '../lib/floor.js';
import type { Results } from '../lib/results.js';

const LEASE_TOKEN = 'a'.repeat(22);

/**
 * Point 1 (with point 7's peers): fresh runs on unique keys at several concurrencies, beside the
 * protocol floor (the very commands the executor sends, raw, on a connection configured like its
 * own: see floorRun) and the ceiling, a raw loop of the two commands a fresh run needs (`SET key lease NX PX`, then
 * `SET key value PX`), in every ioredis configuration; the fastest configuration is the ceiling.
 * The raw loop stores a value encoded once beforehand, so it does not even pay for encoding.
 */
export async function freshRuns(context: BenchContext, results: Results): Promise<void> {
  const namespace = freshNamespace('fresh');
  const subjects = await Promise.all(
    [...context.subjects.values()].map((factory) => factory(context.redisUrl, namespace)),
  );
  const raw = rawClients(context.redisUrl);
  const value = Buffer.from(encode(payload('0123456789abcdef')));
  const floorClient = new Redis(context.redisUrl, EXECUTOR_CONNECTION);
  const floor = floorRun(floorClient, 'script');
  const record = Buffer.from([1, ...encode([0, payload('0123456789abcdef'), null, 1, 2])]);
  try {
    const contenders: Contender[] = [
      ...subjects.map((subject) => ({
        name: subject.name,
        operation: (round: number, i: number) => {
          const key = `f${round}-${i}`;
          return subject.run(key, async () => payload(key));
        },
      })),
      {
        name: FLOOR,
        operation: (round: number, i: number) => floor(`${namespace}:{p${round}-${i}}`, record),
      },
      ...raw.map(({ name, client }) => ({
        name,
        operation: async (round: number, i: number) => {
          const key = `${namespace}:{f${round}-${i}}`;
          await client.set(key, LEASE_TOKEN, 'PX', 10_000, 'NX');
          await client.set(key, value, 'PX', 86_400_000);
        },
      })),
    ];
    const rows = await compare(context, contenders, {
      label: 'fresh runs',
      concurrencies: [1, 16, 64, 256],
      runs: (concurrency) => (context.quick ? 200 : concurrency === 1 ? 5_000 : 20_000),
      rounds: context.quick ? 1 : 3,
      warmup: context.quick ? 200 : 5_000,
      beforeEach: () => context.admin.flushall().then(() => undefined),
    });
    const split = separateRaw(
      rows,
      new Set(raw.map(({ name }) => name)),
      'ceiling (raw SET NX PX + SET PX)',
    );
    results.ceilingConfigs.push(...split.configs);
    results.fresh.push(...split.subjects, ...split.baseline);
  } finally {
    await Promise.all(subjects.map((subject) => subject.close()));
    for (const { client } of raw) client.disconnect();
    floorClient.disconnect();
  }
}

/** The protocol floor's name in results (see floorRun). */
export const FLOOR = 'protocol floor (raw SET NX GET + complete script)';
