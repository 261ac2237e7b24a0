import { decode, encode } from '@msgpack/msgpack';
import { IdempotentExecutor } from 'idempotent-executor';
import { Redis } from 'ioredis';
import { hasSetIfeq } from '../../src/store/redis/redis-lease.js';
import { startOwnValkeyServer } from '../../test/helpers/valkey.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import { EXECUTOR_CONNECTION, floorRun, serverCpuMicros } from '../lib/floor.js';
import { drive } from '../lib/load.js';
import type { Results, ServerCpuRow } from '../lib/results.js';

const CONCURRENCY = 64;

interface Measured {
  readonly subject: string;
  readonly kind: 'fresh' | 'replay';
  operation(round: number, i: number): Promise<unknown>;
}

/**
 * Point 4: Redis's own CPU per fresh run and per replay (`used_cpu_user` + `used_cpu_sys` deltas
 * over a measurement, divided by its runs), the executor beside the raw loops of the same
 * commands, on the bench's Redis (the complete script) and on a Valkey 8.1 built by
 * test/tools/valkey.sh (`SET … IFEQ`, detected by the store). Throughput is measured in the same
 * rounds, contenders alternating.
 */
export async function serverCpu(context: BenchContext, results: Results): Promise<void> {
  await measureServer(context, results, 'redis', context.redisUrl, context.admin);
  const valkey = await startOwnValkeyServer();
  const admin = new Redis(valkey.url);
  try {
    const version = /valkey_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? '?';
    results.machine.valkey = version;
    await measureServer(context, results, `valkey ${version}`, valkey.url, admin);
  } finally {
    admin.disconnect();
    await valkey.stop();
  }
}

async function measureServer(
  context: BenchContext,
  results: Results,
  server: string,
  url: string,
  admin: Redis,
): Promise<void> {
  const namespace = freshNamespace('cpu');
  const userClient = new Redis(url);
  const executor = new IdempotentExecutor({ redis: userClient, namespace });
  // The completion the executor's store finds on this server: the floor sends the same.
  const mode = hasSetIfeq(await admin.info('server')) ? 'ifeq' : 'script';
  const floorClient = new Redis(url, EXECUTOR_CONNECTION);
  const rawClient = new Redis(url, EXECUTOR_CONNECTION);
  const floor = floorRun(floorClient, mode);
  const scriptFloor = floorRun(floorClient, 'script');
  const record = Buffer.from([1, ...encode([0, payload('0123456789abcdef'), null, 1, 2])]);
  const value = Buffer.from(encode(payload('0123456789abcdef')));
  const replayKeys = context.quick ? 200 : 5_000;
  const runs = context.quick ? 500 : 20_000;
  try {
    for (let i = 0; i < replayKeys; i++) {
      await executor.run(`r-${i}`, async () => payload(`r-${i}`));
      await rawClient.set(`${namespace}:raw:{r-${i}}`, value);
    }
    const measured: Measured[] = [
      {
        subject: `idempotent-executor (${mode === 'ifeq' ? 'SET IFEQ' : 'script'})`,
        kind: 'fresh',
        operation: (round, i) => executor.run(`f${round}-${i}`, async () => payload(`f${i}`)),
      },
      {
        subject: `protocol floor (SET NX GET + ${mode === 'ifeq' ? 'SET IFEQ + PUBLISH' : 'complete script'})`,
        kind: 'fresh',
        operation: (round, i) => floor(`${namespace}:{p${round}-${i}}`, record),
      },
      ...(mode === 'ifeq'
        ? [
            {
              subject: 'protocol floor (SET NX GET + complete script)',
              kind: 'fresh' as const,
              operation: (round: number, i: number) =>
                scriptFloor(`${namespace}:{s${round}-${i}}`, record),
            },
          ]
        : []),
      {
        subject: 'raw SET NX PX + SET PX',
        kind: 'fresh',
        operation: async (round, i) => {
          const key = `${namespace}:{x${round}-${i}}`;
          await rawClient.set(key, 'a'.repeat(32), 'PX', 10_000, 'NX');
          await rawClient.set(key, value, 'PX', 86_400_000);
        },
      },
      {
        subject: `idempotent-executor (${mode === 'ifeq' ? 'SET IFEQ' : 'script'})`,
        kind: 'replay',
        operation: (_round, i) =>
          executor.run(`r-${i % replayKeys}`, async () => {
            throw new Error('a replay ran fn');
          }),
      },
      {
        subject: 'raw GET + decode',
        kind: 'replay',
        operation: async (_round, i) => {
          const bytes = await rawClient.getBuffer(`${namespace}:raw:{r-${i % replayKeys}}`);
          if (bytes === null) throw new Error('raw value missing');
          return decode(bytes);
        },
      },
    ];
    const samples = new Map<Measured, { opsPerSec: number; cpu: number }[]>(
      measured.map((m) => [m, []]),
    );
    let round = 0;
    for (const m of measured) {
      await drive(context.quick ? 100 : 2_000, CONCURRENCY, (i) => m.operation(round, i));
      round++;
    }
    const rounds = context.quick ? 1 : 3;
    for (let r = 0; r < rounds; r++) {
      for (const m of r % 2 === 0 ? measured : [...measured].reverse()) {
        const tick = context.progress.step(
          `server CPU on ${server}: ${m.subject} ${m.kind}, round ${r + 1}/${rounds}`,
          runs,
        );
        const thisRound = round++;
        const before = await serverCpuMicros(admin);
        const result = await drive(runs, CONCURRENCY, (i) => m.operation(thisRound, i), tick);
        const cpu = ((await serverCpuMicros(admin)) - before) / runs;
        if (result.errors > 0) throw new Error(`${m.subject} failed ${result.errors} runs`);
        samples.get(m)?.push({ opsPerSec: result.opsPerSec, cpu });
      }
    }
    for (const m of measured) {
      const sorted = [...(samples.get(m) ?? [])].sort((a, b) => a.opsPerSec - b.opsPerSec);
      const median = sorted[Math.floor(sorted.length / 2)];
      const cpus = (samples.get(m) ?? []).map((s) => s.cpu).sort((a, b) => a - b);
      if (median === undefined) continue;
      const row: ServerCpuRow = {
        server,
        subject: m.subject,
        kind: m.kind,
        concurrency: CONCURRENCY,
        opsPerSec: median.opsPerSec,
        cpuMicrosPerRun: cpus[Math.floor(cpus.length / 2)] ?? Number.NaN,
      };
      results.serverCpu.push(row);
    }
  } finally {
    await executor.close();
    userClient.disconnect();
    floorClient.disconnect();
    rawClient.disconnect();
    await admin.flushall();
  }
}
