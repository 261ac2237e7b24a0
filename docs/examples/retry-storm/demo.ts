// `npm run demo`: a retry storm against a payment provider. Several OS processes fire
// duplicate "charge order" calls for the same orders at overlapping moments, as retrying
// clients, load balancers and queue redeliveries do. Every order must be charged once.
//
// With a reachable Redis (REDIS_URL, default redis://127.0.0.1:6379) the storm runs in
// WORKERS child processes sharing that Redis; without one it runs in this process on a
// MemoryStore and says so.
//
// `npm run demo -- --store postgres` runs the same storm, in the same processes with the same
// checks, on PostgreSQL (POSTGRES_URL, default postgresql://postgres@127.0.0.1:5432/test): a
// PostgresStore on a table of its own and the provider's ledger in another, both dropped at the
// end.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { IdempotentExecutor, MemoryStore, type RunContext } from 'idempotent-executor';
import { PostgresStore } from 'idempotent-executor/postgres';
import { Redis } from 'ioredis';
import pg from 'pg';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';
const WORKERS = 4;
const ORDERS = 40;
const CALLS_PER_ORDER_PER_WORKER = 3;
const MAX_ATTEMPTS = 4;

/** A decline: a business answer, cached and replayed to every duplicate. */
class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
}

/** A gateway hiccup: not cached, so the client's retry charges for real. */
class GatewayTimeoutError extends Error {
  override readonly name = 'GatewayTimeoutError';
}

interface Tally {
  requests: number;
  executions: number;
  transientFailures: number;
  replays: number;
  waits: number;
  joined: number;
  declinesSeen: number;
  succeeded: number;
}

const emptyTally = (): Tally => ({
  requests: 0,
  executions: 0,
  transientFailures: 0,
  replays: 0,
  waits: 0,
  joined: 0,
  declinesSeen: 0,
  succeeded: 0,
});

/** The fake provider's ledger: charges per order, and which orders already had their hiccup. */
interface Ledger {
  charge(order: number): Promise<void>;
  firstAttempt(order: number): Promise<boolean>;
  charges(): Promise<Map<number, number>>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const declines = (order: number) => order % 7 === 3;
const hiccups = (order: number) => order % 5 === 1;

/** One client process: fires its duplicate calls for every order, retrying transient errors. */
async function storm(executor: IdempotentExecutor, ledger: Ledger, tally: Tally): Promise<void> {
  const charge = async (order: number, ctx: RunContext) => {
    tally.executions++;
    await sleep(20 + Math.random() * 30); // the provider's latency
    if (hiccups(order) && (await ledger.firstAttempt(order))) {
      tally.transientFailures++;
      throw new GatewayTimeoutError(`gateway timed out charging order ${order}`);
    }
    if (declines(order)) throw new CardDeclinedError(`card declined for order ${order}`);
    await ledger.charge(order);
    return { order, chargeId: `ch_${order}`, fencingToken: await ctx.fencingToken() };
  };

  const call = async (order: number) => {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      tally.requests++;
      try {
        await executor.run(`order-${order}`, (ctx) => charge(order, ctx), {
          fingerprint: { order, amount: 1_000 + order },
        });
        tally.succeeded++;
        return;
      } catch (error) {
        if (error instanceof CardDeclinedError) {
          tally.declinesSeen++;
          return;
        }
        if (!(error instanceof GatewayTimeoutError) || attempt === MAX_ATTEMPTS) throw error;
        await sleep(10 + Math.random() * 20); // the client's back-off
      }
    }
  };

  const calls: Promise<void>[] = [];
  for (let order = 0; order < ORDERS; order++) {
    for (let i = 0; i < CALLS_PER_ORDER_PER_WORKER; i++) {
      calls.push(sleep(Math.random() * 120).then(() => call(order)));
    }
  }
  await Promise.all(calls);
}

function executorOptions(tally: Tally) {
  return {
    errorClasses: [CardDeclinedError, GatewayTimeoutError],
    shouldCacheError: (error: unknown) => !(error instanceof GatewayTimeoutError),
    onEvent: (event: { type: string; waitedMs?: number }) => {
      if (event.type === 'replayed') {
        tally.replays++;
        if ((event.waitedMs ?? 0) > 0) tally.waits++;
      } else if (event.type === 'joined') {
        tally.joined++;
      }
    },
  };
}

function redisLedger(redis: Redis, namespace: string): Ledger {
  return {
    charge: async (order) => {
      await redis.incr(`${namespace}:ledger:charges:${order}`);
    },
    firstAttempt: async (order) =>
      (await redis.set(`${namespace}:ledger:hiccup:${order}`, '1', 'NX')) === 'OK',
    charges: async () => {
      const counts = new Map<number, number>();
      for (let order = 0; order < ORDERS; order++) {
        counts.set(order, Number((await redis.get(`${namespace}:ledger:charges:${order}`)) ?? 0));
      }
      return counts;
    },
  };
}

/** The ledger in a table of the demo's own: charges per order, and whether it had its hiccup. */
function postgresLedger(pool: pg.Pool, table: string): Ledger {
  return {
    charge: async (order) => {
      await pool.query(
        `INSERT INTO ${table} AS l (order_id, charges) VALUES ($1, 1)
         ON CONFLICT (order_id) DO UPDATE SET charges = l.charges + 1`,
        [order],
      );
    },
    firstAttempt: async (order) => {
      const { rowCount } = await pool.query(
        `INSERT INTO ${table} AS l (order_id, hiccuped) VALUES ($1, true)
         ON CONFLICT (order_id) DO UPDATE SET hiccuped = true WHERE NOT l.hiccuped`,
        [order],
      );
      return rowCount === 1;
    },
    charges: async () => {
      const { rows } = await pool.query<{ order_id: number; charges: number }>(
        `SELECT order_id, charges FROM ${table}`,
      );
      const counts = new Map(rows.map((row) => [row.order_id, row.charges]));
      return new Map([...Array(ORDERS).keys()].map((o) => [o, counts.get(o) ?? 0]));
    },
  };
}

function memoryLedger(): Ledger {
  const charges = new Map<number, number>();
  const hiccuped = new Set<number>();
  return {
    charge: async (order) => {
      charges.set(order, (charges.get(order) ?? 0) + 1);
    },
    firstAttempt: async (order) => !hiccuped.has(order) && Boolean(hiccuped.add(order)),
    charges: async () => new Map([...Array(ORDERS).keys()].map((o) => [o, charges.get(o) ?? 0])),
  };
}

async function redisAnswers(url: string): Promise<boolean> {
  const probe = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 500,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    return (await probe.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    probe.disconnect();
  }
}

/** Child mode: one client process of the storm; prints its tally as one JSON line. */
async function runWorker(namespace: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  const tally = emptyTally();
  const executor = new IdempotentExecutor({ redis, namespace, ...executorOptions(tally) });
  await storm(executor, redisLedger(redis, namespace), tally);
  await executor.close();
  await redis.quit();
  process.stdout.write(`${JSON.stringify(tally)}\n`);
}

/** Child mode on PostgreSQL: the store's table and the ledger's were made by the parent. */
async function runPostgresWorker(namespace: string, table: string): Promise<void> {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL });
  const store = new PostgresStore({ pool, table });
  const tally = emptyTally();
  const executor = new IdempotentExecutor({ store, namespace, ...executorOptions(tally) });
  await storm(executor, postgresLedger(pool, ledgerTableOf(table)), tally);
  await executor.close();
  await store.close();
  await pool.end();
  process.stdout.write(`${JSON.stringify(tally)}\n`);
}

const ledgerTableOf = (table: string) => `${table}_ledger`;

function runChild(namespace: string, ...storeArgs: string[]): Promise<Tally> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), '--worker', namespace, ...storeArgs],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code === 0) resolve(JSON.parse(output.trim()) as Tally);
      else reject(new Error(`storm process exited with ${code}`));
    });
  });
}

function add(total: Tally, part: Tally): Tally {
  for (const key of Object.keys(total) as (keyof Tally)[]) total[key] += part[key];
  return total;
}

async function deleteNamespace(redis: Redis, namespace: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.unlink(...keys);
  } while (cursor !== '0');
}

function report(
  mode: string,
  tally: Tally,
  charges: Map<number, number>,
  seconds: number,
): boolean {
  const orders = [...charges.keys()];
  const declined = orders.filter(declines);
  const chargedOnce = orders.filter((order) => !declines(order) && charges.get(order) === 1);
  const wrong = orders.filter((order) => charges.get(order) !== (declines(order) ? 0 : 1));
  const rows: [string, string | number][] = [
    ['mode', mode],
    ['orders', ORDERS],
    ['requests (duplicates and retries)', tally.requests],
    ['executions of the charge function', tally.executions],
    ['  of which transient gateway errors (not cached)', tally.transientFailures],
    [
      `replays from ${mode.includes('PostgreSQL') ? 'PostgreSQL' : 'Redis/the store'}`,
      tally.replays,
    ],
    ['  of which waited for a running charge', tally.waits],
    ['same-process duplicates sharing a call', tally.joined],
    ['callers told "declined" (cached decline)', tally.declinesSeen],
    ['callers told "charged"', tally.succeeded],
    ['orders charged exactly once', `${chargedOnce.length} of ${ORDERS - declined.length}`],
    ['declined orders charged', declined.filter((o) => (charges.get(o) ?? 0) > 0).length],
    ['orders charged twice or more', orders.filter((o) => (charges.get(o) ?? 0) > 1).length],
    ['time', `${seconds.toFixed(1)} s`],
  ];
  const width = Math.max(...rows.map(([label]) => label.length));
  console.log('');
  for (const [label, value] of rows) console.log(`  ${label.padEnd(width)}  ${value}`);
  console.log('');
  const perOrder = orders.map((order) => `${order}:${charges.get(order)}`).join(' ');
  console.log(`  charges per order: ${perOrder}`);
  console.log('');
  if (wrong.length === 0) {
    console.log('  Verdict: every order was charged exactly once (declined ones never).');
  } else {
    console.log(`  Verdict: FAILED for orders ${wrong.join(', ')}`);
  }
  return wrong.length === 0;
}

/** The storm on PostgreSQL: a store table and a ledger table of its own, dropped at the end. */
async function mainOnPostgres(): Promise<void> {
  const started = Date.now();
  const suffix = randomBytes(4).toString('hex');
  const namespace = `demo-${suffix}`;
  const table = `demo_${suffix}`;
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max: 2 });
  const store = new PostgresStore({ pool, table });
  try {
    await store.ensureSchema();
  } catch (error) {
    await store.close();
    await pool.end();
    console.error(`No PostgreSQL answers at ${POSTGRES_URL} (set POSTGRES_URL): ${String(error)}`);
    process.exitCode = 1;
    return;
  }
  console.log(
    `Retry storm: ${WORKERS} processes x ${ORDERS} orders x ${CALLS_PER_ORDER_PER_WORKER} duplicate calls, sharing PostgreSQL at ${POSTGRES_URL} (table ${table})`,
  );
  try {
    await pool.query(
      `CREATE TABLE ${ledgerTableOf(table)} (
         order_id int PRIMARY KEY, charges int NOT NULL DEFAULT 0, hiccuped bool NOT NULL DEFAULT false)`,
    );
    const tallies = await Promise.all(
      Array.from({ length: WORKERS }, () => runChild(namespace, 'postgres', table)),
    );
    const tally = tallies.reduce(add, emptyTally());
    const charges = await postgresLedger(pool, ledgerTableOf(table)).charges();
    const ok = report(
      `${WORKERS} OS processes on PostgreSQL`,
      tally,
      charges,
      (Date.now() - started) / 1000,
    );
    process.exitCode = ok ? 0 : 1;
  } finally {
    await store.close();
    await pool.query(`DROP TABLE IF EXISTS ${table}, ${ledgerTableOf(table)}`);
    await pool.end();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const namespace = `demo-${randomBytes(4).toString('hex')}`;
  if (await redisAnswers(REDIS_URL)) {
    console.log(
      `Retry storm: ${WORKERS} processes x ${ORDERS} orders x ${CALLS_PER_ORDER_PER_WORKER} duplicate calls, sharing Redis at ${REDIS_URL}`,
    );
    const redis = new Redis(REDIS_URL);
    try {
      const tallies = await Promise.all(Array.from({ length: WORKERS }, () => runChild(namespace)));
      const tally = tallies.reduce(add, emptyTally());
      const charges = await redisLedger(redis, namespace).charges();
      const ok = report(
        `${WORKERS} OS processes on Redis`,
        tally,
        charges,
        (Date.now() - started) / 1000,
      );
      process.exitCode = ok ? 0 : 1;
    } finally {
      await deleteNamespace(redis, namespace);
      await redis.quit();
    }
    return;
  }
  console.log(
    `No Redis answers at ${REDIS_URL}: running the same storm in ONE process on a MemoryStore ` +
      `(${WORKERS} simulated clients, each with its own executor over one shared store).`,
  );
  const store = new MemoryStore();
  const ledger = memoryLedger();
  const tally = emptyTally();
  await Promise.all(
    Array.from({ length: WORKERS }, () =>
      storm(new IdempotentExecutor({ store, namespace, ...executorOptions(tally) }), ledger, tally),
    ),
  );
  await store.close();
  const ok = report(
    '1 process on MemoryStore (no Redis)',
    tally,
    await ledger.charges(),
    (Date.now() - started) / 1000,
  );
  process.exitCode = ok ? 0 : 1;
}

if (process.argv[2] === '--worker') {
  const [namespace = 'demo', store, table = ''] = process.argv.slice(3);
  if (store === 'postgres') await runPostgresWorker(namespace, table);
  else await runWorker(namespace);
} else {
  const { values } = parseArgs({ options: { store: { type: 'string', default: 'redis' } } });
  if (values.store === 'postgres') await mainOnPostgres();
  else if (values.store === 'redis') await main();
  else throw new Error(`Expected \`--store\` to be redis or postgres, got ${values.store}`);
}
