// A process running IdempotentExecutor on a PostgresStore, driven by the cross-process tests on
// the shared worker protocol (test/helpers/worker): answers `run` requests with what
// `executor.run` got, pushes a `started` event from every execution of fn.
// fn writes a row to the test's ledger table for every execution: in the plain mode on the
// pool (committed at once), in the transactional mode on fn's transaction.
import pg from 'pg';
import { IdempotentExecutor, type RunContext } from '../../../src/index.js';
import { PostgresStore, transactional } from '../../../src/store/postgres/index.js';
import { emit, serve, workerConfig } from '../../helpers/worker/child.js';

export interface WorkerConfig {
  readonly url: string;
  readonly schema: string;
  readonly leaseMs?: number;
}

export interface RunRequest {
  readonly id: string;
  readonly key: string;
  readonly mode: 'plain' | 'transactional';
  /** Waits this long inside fn (the event loop keeps running: renewals go on). */
  readonly sleepMs?: number;
  /** Blocks the event loop this long inside fn, after the ledger write: no renewal can run. */
  readonly stallMs?: number;
}

/** What fn returns: the process that ran it and its fencing token. */
export interface Execution {
  readonly pid: number;
  readonly fence: number;
}

export interface PgRequests {
  run(request: RunRequest): Execution;
}

/** fn of run `id` started in process `pid`, with fencing token `fence`. */
export interface StartedEvent {
  readonly event: 'started';
  readonly id: string;
  readonly pid: number;
  readonly fence: number;
}

const config = workerConfig<WorkerConfig>();
const push: (event: StartedEvent) => void = emit;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const pool = new pg.Pool({ connectionString: config.url, max: 8 });
pool.on('error', () => {});
const store = new PostgresStore({ pool, schema: config.schema });
const executor = new IdempotentExecutor({
  store,
  namespace: 'xproc',
  ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
  waitTimeoutMs: 20_000,
});
const ledger = `"${config.schema}".ledger`;

async function body(
  request: RunRequest,
  ctx: RunContext,
  db: pg.Pool | pg.PoolClient,
): Promise<Execution> {
  const fence = await ctx.fencingToken();
  push({ event: 'started', id: request.id, pid: process.pid, fence });
  await db.query(`INSERT INTO ${ledger} (key, pid, fence) VALUES ($1, $2, $3)`, [
    request.key,
    process.pid,
    fence,
  ]);
  if (request.sleepMs !== undefined) await sleep(request.sleepMs);
  if (request.stallMs !== undefined) {
    const until = Date.now() + request.stallMs;
    while (Date.now() < until) {
      // Busy: timers (the lease renewal) cannot fire.
    }
  }
  return { pid: process.pid, fence };
}

serve<PgRequests>(
  {
    run: (request) =>
      executor.run(
        request.key,
        request.mode === 'transactional'
          ? transactional(store, (ctx, client) => body(request, ctx, client))
          : (ctx: RunContext) => body(request, ctx, pool),
      ),
  },
  {
    shutdown: async () => {
      await executor.close();
      await store.close();
      await pool.end();
    },
  },
);
