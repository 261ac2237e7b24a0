// Several OS processes sharing one PostgreSQL table, each with its own pool, store and executor:
// duplicates, an owner SIGKILLed mid-fn, an owner that stalls past its lease. Each test has a
// schema of its own (the store's table and a ledger fn writes one row to per execution).
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { startWorker, type Worker } from '../helpers/processes.js';
import { connectPool, dropSchema, nextSchema, POSTGRES_URL, storeInNewSchema } from './support.js';
import type { RunCommand, WorkerConfig } from './workers/pg-worker.js';

const WORKER = new URL('./workers/pg-worker.ts', import.meta.url);
const pool = connectPool();

interface Settled {
  id: string;
  ok: boolean;
  value?: { pid: number; fence: number };
  code?: string;
}
interface Started {
  id: string;
  pid: number;
  fence: number;
}

describe('PostgresStore across processes', () => {
  let schema: string;
  let workers: Worker[];

  const start = async (config: Partial<WorkerConfig> = {}): Promise<Worker> => {
    const worker = startWorker(WORKER, [JSON.stringify({ url: POSTGRES_URL, schema, ...config })]);
    workers.push(worker);
    await worker.until('ready');
    return worker;
  };
  const run = (worker: Worker, command: Omit<RunCommand, 'op'>) =>
    worker.send({ op: 'run', ...command });
  const ledger = async (key: string) =>
    (
      await pool.query<{ pid: number; fence: string }>(
        `SELECT pid, fence::text FROM "${schema}".ledger WHERE key = $1 ORDER BY id`,
        [key],
      )
    ).rows.map((row) => ({ pid: row.pid, fence: Number(row.fence) }));

  beforeEach(async () => {
    schema = nextSchema();
    const store = await storeInNewSchema(pool, { schema });
    await store.close();
    await pool.query(
      `CREATE TABLE "${schema}".ledger (id serial PRIMARY KEY, key text NOT NULL, pid int NOT NULL, fence bigint NOT NULL)`,
    );
    workers = [];
  });
  afterEach(async () => {
    for (const worker of workers) worker.kill();
    await Promise.all(workers.map((worker) => worker.exited));
    await dropSchema(pool, schema);
  });
  after(() => pool.end());

  for (const mode of ['plain', 'transactional'] as const) {
    it(`runs fn once per key for duplicates from three processes (${mode})`, async () => {
      const processes = await Promise.all([start(), start(), start()]);
      const keys = Array.from({ length: 8 }, (_, i) => `order-${i}`);

      for (const [p, worker] of processes.entries()) {
        for (const key of keys) {
          for (let copy = 0; copy < 2; copy++) {
            run(worker, { id: `${p}-${key}-${copy}`, key, mode, sleepMs: 50 });
          }
        }
      }
      const settled = await Promise.all(
        processes.map(async (worker) => {
          const mine: Settled[] = [];
          while (mine.length < keys.length * 2) mine.push(await worker.until<Settled>('settled'));
          return mine;
        }),
      );

      for (const key of keys) {
        const rows = await ledger(key);
        assert.equal(rows.length, 1, `one execution of ${key}`);
        const results = settled.flat().filter((s) => s.id.includes(`-${key}-`));
        assert.equal(results.length, 6);
        for (const result of results) {
          assert.equal(result.ok, true, `settled ${JSON.stringify(result)}`);
          assert.deepEqual(result.value, rows[0]);
        }
      }
    });

    it(`takes over after the owner is SIGKILLed mid-fn, with a larger fencing token (${mode})`, async () => {
      const owner = await start({ leaseMs: 600 });
      const successor = await start({ leaseMs: 600 });
      run(owner, { id: 'owner', key: 'order-k', mode, sleepMs: 30_000 });
      const ownerStarted = await owner.until<Started>('started');
      // The owner's ledger row is written (committed in the plain mode, pending in the other).
      await new Promise((resolve) => setTimeout(resolve, 100));

      owner.kill('SIGKILL');
      await owner.exited;
      run(successor, { id: 'successor', key: 'order-k', mode });
      const successorStarted = await successor.until<Started>('started');
      const settled = await successor.until<Settled>('settled');

      assert.ok(
        successorStarted.fence > ownerStarted.fence,
        `${successorStarted.fence} > ${ownerStarted.fence}`,
      );
      assert.equal(settled.ok, true);
      assert.equal(settled.value?.pid, successorStarted.pid);
      const rows = await ledger('order-k');
      const pids = rows.map((row) => row.pid);
      if (mode === 'transactional') {
        // The killed owner's transaction died with its connection: only the successor's row.
        assert.deepEqual(pids, [successorStarted.pid]);
      } else {
        assert.deepEqual(pids, [ownerStarted.pid, successorStarted.pid]);
      }
    });

    it(`refuses the completion of an owner stalled past its lease: LEASE_LOST (${mode})`, async () => {
      const stalled = await start({ leaseMs: 300 });
      const successor = await start({ leaseMs: 300 });
      run(stalled, { id: 'stalled', key: 'order-s', mode, stallMs: 1_500 });
      const stalledStarted = await stalled.until<Started>('started');

      await new Promise((resolve) => setTimeout(resolve, 400));
      run(successor, { id: 'successor', key: 'order-s', mode });
      const successorSettled = await successor.until<Settled>('settled');
      const stalledSettled = await stalled.until<Settled>('settled');

      assert.equal(successorSettled.ok, true);
      assert.ok((successorSettled.value?.fence ?? 0) > stalledStarted.fence);
      assert.equal(stalledSettled.ok, false);
      assert.equal(stalledSettled.code, 'IDEMPOTENCY_LEASE_LOST');
      run(stalled, { id: 'replay', key: 'order-s', mode });
      const replay = await stalled.until<Settled>('settled');
      assert.deepEqual(replay.value, successorSettled.value, 'the record holds the successor');
      const pids = (await ledger('order-s')).map((row) => row.pid);
      if (mode === 'transactional') {
        assert.deepEqual(pids, [successorSettled.value?.pid], 'the stale owner rolled back');
      } else {
        assert.equal(pids.length, 2);
      }
    });
  }
});
