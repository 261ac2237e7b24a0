// Several OS processes sharing one PostgreSQL table, each with its own pool, store and executor:
// duplicates, an owner SIGKILLed mid-fn, an owner that stalls past its lease. Each test has a
// schema of its own (the store's table and a ledger fn writes one row to per execution).
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import { WorkerProcess } from '../helpers/worker/parent.js';
import type { Settled } from '../helpers/worker/protocol.js';
import { connectPool, dropSchema, nextSchema, POSTGRES_URL, storeInNewSchema } from './support.js';
import type {
  Execution,
  PgRequests,
  RunRequest,
  StartedEvent,
  WorkerConfig,
} from './workers/pg-worker.js';

const WORKER = new URL('./workers/pg-worker.ts', import.meta.url);
/** How long a test waits for a run's reply before it fails. */
const REPLY_WITHIN_MS = 20_000;
const pool = connectPool();

type Worker = WorkerProcess<PgRequests, StartedEvent>;

const executionOf = (settled: Settled<Execution>) => (settled.ok ? settled.value : undefined);
const codeOf = (settled: Settled<Execution>) => (settled.ok ? undefined : settled.error.code);

describe('PostgresStore across processes', () => {
  let schema: string;
  let workers: Worker[];

  const start = async (config: Partial<WorkerConfig> = {}): Promise<Worker> => {
    const worker: Worker = new WorkerProcess(WORKER, { url: POSTGRES_URL, schema, ...config });
    workers.push(worker);
    await worker.ready();
    return worker;
  };
  const run = (worker: Worker, request: RunRequest) =>
    worker.settle('run', request, REPLY_WITHIN_MS);
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
    await Promise.all(workers.map((worker) => worker.kill()));
    await dropSchema(pool, schema);
  });
  after(() => pool.end());

  for (const mode of ['plain', 'transactional'] as const) {
    it(`runs fn once per key for duplicates from three processes (${mode})`, async () => {
      const processes = await Promise.all([start(), start(), start()]);
      const keys = Array.from({ length: 8 }, (_, i) => `order-${i}`);

      const settled = await Promise.all(
        processes.flatMap((worker, p) =>
          keys.flatMap((key) =>
            [0, 1].map(async (copy) => ({
              key,
              outcome: await run(worker, { id: `${p}-${key}-${copy}`, key, mode, sleepMs: 50 }),
            })),
          ),
        ),
      );

      for (const key of keys) {
        const rows = await ledger(key);
        assert.equal(rows.length, 1, `one execution of ${key}`);
        const results = settled.filter((s) => s.key === key).map((s) => s.outcome);
        assert.equal(results.length, 6);
        for (const result of results) {
          assert.equal(result.ok, true, `settled ${JSON.stringify(result)}`);
          assert.deepEqual(executionOf(result), rows[0]);
        }
      }
    });

    it(`takes over after the owner is SIGKILLed mid-fn, with a larger fencing token (${mode})`, async () => {
      const owner = await start({ leaseMs: 600 });
      const successor = await start({ leaseMs: 600 });
      void run(owner, { id: 'owner', key: 'order-k', mode, sleepMs: 30_000 });
      const ownerStarted = await owner.until('started');
      // The owner's ledger row is written (committed in the plain mode, pending in the other).
      await new Promise((resolve) => setTimeout(resolve, 100));

      await owner.kill('SIGKILL');
      const succeeding = run(successor, { id: 'successor', key: 'order-k', mode });
      const successorStarted = await successor.until('started');
      const settled = await succeeding;

      assert.ok(
        successorStarted.fence > ownerStarted.fence,
        `${successorStarted.fence} > ${ownerStarted.fence}`,
      );
      assert.equal(settled.ok, true);
      assert.equal(executionOf(settled)?.pid, successorStarted.pid);
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
      const stalling = run(stalled, { id: 'stalled', key: 'order-s', mode, stallMs: 1_500 });
      const stalledStarted = await stalled.until('started');

      await new Promise((resolve) => setTimeout(resolve, 400));
      const successorSettled = await run(successor, { id: 'successor', key: 'order-s', mode });
      const stalledSettled = await stalling;

      assert.equal(successorSettled.ok, true);
      assert.ok((executionOf(successorSettled)?.fence ?? 0) > stalledStarted.fence);
      assert.equal(stalledSettled.ok, false);
      assert.equal(codeOf(stalledSettled), 'IDEMPOTENCY_LEASE_LOST');
      const replay = await run(stalled, { id: 'replay', key: 'order-s', mode });
      assert.deepEqual(
        executionOf(replay),
        executionOf(successorSettled),
        'the record holds the successor',
      );
      const pids = (await ledger('order-s')).map((row) => row.pid);
      if (mode === 'transactional') {
        assert.deepEqual(pids, [executionOf(successorSettled)?.pid], 'the stale owner rolled back');
      } else {
        assert.equal(pids.length, 2);
      }
    });
  }
});
