import { createHash, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { decode, encode } from '@msgpack/msgpack';
import { IdempotentExecutor, isIdempotencyError } from 'idempotent-executor';
import { PostgresStore } from 'idempotent-executor/postgres';
import pg from 'pg';
import { channelOf, tableNames } from '../../src/store/postgres/names.js';
import { statementsFor } from '../../src/store/postgres/statements.js';
import { compare, separateRaw } from '../lib/compare.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import { drive } from '../lib/load.js';
import type { PostgresResults, Results, WaiterRow } from '../lib/results.js';
import { WaiterTally, WaiterWorkers } from '../lib/waiter-workers.js';
import { executorSubject } from '../subjects/executor.js';
import type { Subject } from '../subjects/subject.js';

const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
/** pg's own default `max`: every pool of the scenario, the executor's and the raw loops', has it. */
const POOL_SIZE = 10;
const TABLE = 'idempotency_records';
const RAW_TABLE = 'raw_records';
const WORKER = fileURLToPath(new URL('../workers/postgres-waiter.ts', import.meta.url));
const PROCESSES = 2;

export const ON_POSTGRES = 'idempotent-executor on PostgresStore';
export const ON_REDIS = 'idempotent-executor on RedisStore';
export const PG_CEILING = 'ceiling (raw INSERT … ON CONFLICT + UPDATE)';
export const PG_REPLAY_BASELINE = 'baseline (raw SELECT + decode)';
export const PG_FLOOR = "protocol floor (the store's own statements, raw)";

/**
 * The PostgreSQL store (issue 12): fresh runs and replays of the executor on `PostgresStore`
 * beside a raw loop of the SQL a fresh run needs on the same database and table shape — the
 * claim (`INSERT … ON CONFLICT (key_hash) DO UPDATE … WHERE expired`), then the completion as a
 * compare-and-set on the token (`UPDATE … WHERE token = $2 AND record IS NULL AND not expired`),
 * a record encoded once beforehand, no notification, none of our code, a pool of the same size —
 * and beside the executor on the bench's Redis, measured in the same alternating rounds. The raw
 * loop runs with unnamed and with prepared statements; the faster is the ceiling. The protocol
 * floor sends the store's own statements, raw: for a fresh run the claim and the completion with
 * its `pg_notify`, for a replay the claim (refused) and the read. Then waiters:
 * one key, fn 200 ms, callers split over two processes, on each store.
 *
 * Runs against the PostgreSQL at POSTGRES_URL (default postgresql://postgres@127.0.0.1:5432/test)
 * in a schema of its own, created here and dropped at the end.
 */
export async function postgresStore(context: BenchContext, results: Results): Promise<void> {
  const schema = `bench_pg_${process.pid}_${Date.now().toString(36)}`;
  const admin = new pg.Pool({ connectionString: POSTGRES_URL, max: 1 });
  admin.on('error', () => {});
  try {
    const setup = new PostgresStore({ pool: admin, schema, table: TABLE, cleanupIntervalMs: 0 });
    await setup.ensureSchema();
    await setup.close();
    await admin.query(
      `CREATE TABLE ${schema}.${RAW_TABLE} (LIKE ${schema}.${TABLE} INCLUDING ALL)`,
    );
    const { rows } = await admin.query<{ server_version: string }>('SHOW server_version');
    const measured: PostgresResults = {
      server: rows[0]?.server_version ?? '?',
      poolSize: POOL_SIZE,
      fresh: [],
      ceilingConfigs: [],
      replay: [],
      waiters: [],
    };
    results.postgres = measured;
    await throughput(context, schema, admin, measured);
    measured.waiters.push(...(await waiterRounds(context, schema)));
  } finally {
    await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).catch(() => {});
    await admin.end();
  }
}

/** Fresh runs, then replays, of both executors and the raw loops. */
async function throughput(
  context: BenchContext,
  schema: string,
  admin: pg.Pool,
  measured: PostgresResults,
): Promise<void> {
  const namespace = freshNamespace('postgres');
  const subjects = [
    await openSubject('postgres', POSTGRES_URL, namespace, schema),
    await openSubject('redis', context.redisUrl, namespace, schema),
  ];
  const rawPool = new pg.Pool({ connectionString: POSTGRES_URL, max: POOL_SIZE });
  rawPool.on('error', () => {});
  const raw = rawLoops(rawPool, `${schema}.${RAW_TABLE}`);
  const floor = storeFloor(rawPool, schema);
  try {
    const fresh = await compare(
      context,
      [
        ...subjects.map((subject) => ({
          name: subject.name,
          operation: (round: number, i: number) => {
            const key = `f${round}-${i}`;
            return subject.run(key, async () => payload(key));
          },
        })),
        {
          name: PG_FLOOR,
          operation: (round: number, i: number) => floor.fresh(`${namespace}:{p${round}-${i}}`),
        },
        ...raw.map(({ name, fresh }) => ({
          name,
          operation: (round: number, i: number) => fresh(`${namespace}:{f${round}-${i}}`),
        })),
      ],
      {
        label: 'postgres fresh runs',
        concurrencies: [1, 64],
        runs: (concurrency) => (context.quick ? 100 : concurrency === 1 ? 1_000 : 5_000),
        rounds: context.quick ? 1 : 3,
        warmup: context.quick ? 100 : 1_000,
        beforeEach: async () => {
          await context.admin.flushall();
          await admin.query(`TRUNCATE ${schema}.${TABLE}, ${schema}.${RAW_TABLE}`);
        },
      },
    );
    const freshSplit = separateRaw(fresh, new Set(raw.map(({ name }) => name)), PG_CEILING);
    measured.ceilingConfigs.push(...freshSplit.configs);
    measured.fresh.push(...freshSplit.subjects, ...freshSplit.baseline);

    const keys = context.quick ? 200 : 5_000;
    for (const subject of subjects) {
      const tick = context.progress.step(`postgres replays: completing ${keys} keys`, keys);
      const completed = await drive(
        keys,
        16,
        (i) => subject.run(`r-${i}`, async () => payload(`r-${i}`)),
        tick,
      );
      if (completed.errors > 0) throw new Error(`${subject.name} failed to complete keys`);
    }
    const store = raw[0];
    if (store === undefined) throw new Error('no raw loop');
    await drive(keys, 16, (i) => store.store(`${namespace}:raw:{r-${i}}`, `r-${i}`));
    const fnThatMustNotRun = async (): Promise<never> => {
      throw new Error('a replay ran fn');
    };
    const replay = await compare(
      context,
      [
        ...subjects.map((subject) => ({
          name: subject.name,
          operation: (_round: number, i: number) => subject.run(`r-${i % keys}`, fnThatMustNotRun),
        })),
        {
          name: PG_FLOOR,
          operation: (_round: number, i: number) =>
            floor.replay(`${namespace}:raw:{r-${i % keys}}`),
        },
        ...raw.map(({ name, replay }) => ({
          name,
          operation: (_round: number, i: number) => replay(`${namespace}:raw:{r-${i % keys}}`),
        })),
      ],
      {
        label: 'postgres replays',
        concurrencies: [1, 64],
        runs: (concurrency) => (context.quick ? 200 : concurrency === 1 ? 2_000 : 10_000),
        rounds: context.quick ? 1 : 3,
        warmup: context.quick ? 100 : 1_000,
      },
    );
    const replaySplit = separateRaw(
      replay,
      new Set(raw.map(({ name }) => name)),
      PG_REPLAY_BASELINE,
    );
    measured.replay.push(...replaySplit.subjects, ...replaySplit.baseline);
  } finally {
    await Promise.all(subjects.map((subject) => subject.close()));
    await rawPool.end();
    await context.admin.flushall();
  }
}

interface RawLoop {
  readonly name: string;
  /** A fresh run's SQL for `key`: claim, then complete with a record encoded beforehand. */
  fresh(key: string): Promise<void>;
  /** Writes a completed row of `key` holding the encoded payload of `id`. */
  store(key: string, id: string): Promise<void>;
  /** Reads the row of `key` and decodes its value. */
  replay(key: string): Promise<unknown>;
}

/** The raw loops on `table`, with unnamed statements and with prepared (named) ones. */
function rawLoops(pool: pg.Pool, table: string): RawLoop[] {
  const claim = `INSERT INTO ${table} AS r (key_hash, key, token, record, expires_at)
VALUES ($1, $2, $3, NULL, clock_timestamp() + interval '10 seconds')
ON CONFLICT (key_hash) DO UPDATE
  SET key = EXCLUDED.key, token = EXCLUDED.token, record = NULL, expires_at = EXCLUDED.expires_at
  WHERE r.expires_at <= clock_timestamp()
RETURNING 1`;
  const complete = `UPDATE ${table} SET record = $3, expires_at = clock_timestamp() + interval '1 day'
WHERE key_hash = $1 AND token = $2 AND record IS NULL AND expires_at > clock_timestamp()`;
  const read = `SELECT record FROM ${table} WHERE key_hash = $1 AND expires_at > clock_timestamp()`;
  const record = Buffer.from(encode(payload('0123456789abcdef')));
  const hash = (key: string) => createHash('sha256').update(key, 'utf8').digest();
  return [
    { name: 'pg unnamed statements', prepared: false },
    { name: 'pg prepared statements', prepared: true },
  ].map(({ name, prepared }) => {
    const statement = (label: string, text: string, values: unknown[]) =>
      pool.query(prepared ? { name: `raw_${label}`, text, values } : { text, values });
    return {
      name,
      async fresh(key) {
        const id = hash(key);
        const token = randomBytes(16).toString('hex');
        const claimed = await statement('claim', claim, [id, key, token]);
        if (claimed.rowCount !== 1) throw new Error('raw: key already held');
        const completed = await statement('complete', complete, [id, token, record]);
        if (completed.rowCount !== 1) throw new Error('raw: completion refused');
      },
      async store(key, id) {
        await pool.query(
          `INSERT INTO ${table} (key_hash, key, token, record, expires_at)
VALUES ($1, $2, $3, $4, clock_timestamp() + interval '1 day')`,
          [hash(key), key, randomBytes(16).toString('hex'), Buffer.from(encode(payload(id)))],
        );
      },
      async replay(key) {
        const { rows } = await statement('read', read, [hash(key)]);
        const row = rows[0] as { record: Buffer } | undefined;
        if (row === undefined) throw new Error('raw value missing');
        return decode(row.record);
      },
    } satisfies RawLoop;
  });
}

/**
 * The protocol floor: the statements PostgresStore sends (its own SQL text, on the raw table),
 * with none of the executor's code around them and a record encoded beforehand.
 */
function storeFloor(
  pool: pg.Pool,
  schema: string,
): { fresh(key: string): Promise<void>; replay(key: string): Promise<unknown> } {
  const names = tableNames(RAW_TABLE, schema);
  const sql = statementsFor(names);
  const record = Buffer.from([1, ...encode([0, payload('0123456789abcdef'), null, 1, 2])]);
  const notice = record.toString('base64');
  const hash = (key: string) => createHash('sha256').update(key, 'utf8').digest();
  return {
    async fresh(key) {
      const id = hash(key);
      const token = randomBytes(16).toString('hex');
      const claimed = await pool.query(sql.claim, [id, key, token, 10_000]);
      if (claimed.rowCount !== 1) throw new Error('floor: key already held');
      const channel = channelOf(names.identity, key);
      const completed = await pool.query(sql.complete, [
        id,
        token,
        record,
        86_400_000,
        channel,
        notice,
      ]);
      if (completed.rowCount !== 1) throw new Error('floor: completion refused');
    },
    async replay(key) {
      const id = hash(key);
      const claimed = await pool.query(sql.claim, [
        id,
        key,
        randomBytes(16).toString('hex'),
        10_000,
      ]);
      if (claimed.rowCount !== 0) throw new Error('floor: a replay claimed the key');
      const { rows } = await pool.query(sql.read, [id]);
      const row = rows[0] as { record: Buffer | null } | undefined;
      if (row?.record == null) throw new Error('floor: row missing');
      return decode(row.record);
    },
  };
}

/**
 * The executor on PostgresStore (a pool of {@link POOL_SIZE} on the table in `schema`, created
 * beforehand) or on Redis (a default-configured client, as the bench's executor subject).
 */
export async function openSubject(
  store: 'postgres' | 'redis',
  url: string,
  namespace: string,
  schema: string,
): Promise<Subject> {
  if (store === 'redis') {
    const subject = await executorSubject(url, namespace);
    return {
      name: ON_REDIS,
      run: (key, fn) => subject.run(key, fn),
      isInProgressRejection: (error) => subject.isInProgressRejection(error),
      close: () => subject.close(),
    };
  }
  const pool = new pg.Pool({ connectionString: url, max: POOL_SIZE });
  pool.on('error', () => {});
  const postgres = new PostgresStore({ pool, schema, table: TABLE });
  const executor = new IdempotentExecutor({ store: postgres, namespace });
  return {
    name: ON_POSTGRES,
    run: (key, fn) => executor.run(key, fn),
    isInProgressRejection: (error) =>
      isIdempotencyError(error) && error.code === 'IDEMPOTENCY_IN_PROGRESS',
    async close() {
      await executor.close();
      await postgres.close();
      await pool.end();
    },
  };
}

/** As the waiters scenario, on each store: the delay from the end of the winner's fn. */
async function waiterRounds(context: BenchContext, schema: string): Promise<WaiterRow[]> {
  const counts = context.quick ? [10, 100] : [10, 100, 1000];
  const rounds = context.quick ? 1 : 3;
  const rows: WaiterRow[] = [];
  for (const store of ['postgres', 'redis'] as const) {
    const namespace = freshNamespace('pg-waiters');
    const url = store === 'postgres' ? POSTGRES_URL : context.redisUrl;
    const workers = await WaiterWorkers.start(WORKER, [store, url, namespace, schema], PROCESSES);
    try {
      for (const total of counts) {
        const tick = context.progress.step(`postgres waiters: ${store}, ${total} callers`, rounds);
        const tally = new WaiterTally();
        for (let round = 0; round < rounds; round++) {
          tally.add(await workers.round(`w${total}-${round}`, total));
          tick();
        }
        if (tally.failed > 0 || tally.executions !== rounds) {
          throw new Error(
            `postgres waiters on ${store}: ${tally.failed} callers failed, fn ran ${tally.executions} times in ${rounds} rounds`,
          );
        }
        rows.push(
          tally.row(store === 'postgres' ? ON_POSTGRES : ON_REDIS, total, PROCESSES, Number.NaN),
        );
      }
    } finally {
      await workers.close();
    }
  }
  return rows;
}
