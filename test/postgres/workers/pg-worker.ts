// A process running IdempotentExecutor on a PostgresStore, driven by the cross-process tests
// over JSON lines: reads `run` commands on stdin, prints `started` and `settled` events.
// fn writes a row to the test's ledger table for every execution: in the plain mode on the
// pool (committed at once), in the transactional mode on fn's transaction.
import { createInterface } from 'node:readline';
import pg from 'pg';
import { IdempotentExecutor, type RunContext } from '../../../src/index.js';
import { PostgresStore, transactional } from '../../../src/store/postgres/index.js';

export interface WorkerConfig {
  readonly url: string;
  readonly schema: string;
  readonly leaseMs?: number;
}

export interface RunCommand {
  readonly op: 'run';
  readonly id: string;
  readonly key: string;
  readonly mode: 'plain' | 'transactional';
  /** Waits this long inside fn (the event loop keeps running: renewals go on). */
  readonly sleepMs?: number;
  /** Blocks the event loop this long inside fn, after the ledger write: no renewal can run. */
  readonly stallMs?: number;
}

export type WorkerEvent =
  | { event: 'ready'; pid: number }
  | { event: 'started'; id: string; pid: number; fence: number }
  | { event: 'settled'; id: string; ok: true; value: unknown }
  | { event: 'settled'; id: string; ok: false; code: unknown; message: string };

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;
const print = (event: WorkerEvent) => process.stdout.write(`${JSON.stringify(event)}\n`);
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
  command: RunCommand,
  ctx: RunContext,
  db: pg.Pool | pg.PoolClient,
): Promise<unknown> {
  const fence = await ctx.fencingToken();
  print({ event: 'started', id: command.id, pid: process.pid, fence });
  await db.query(`INSERT INTO ${ledger} (key, pid, fence) VALUES ($1, $2, $3)`, [
    command.key,
    process.pid,
    fence,
  ]);
  if (command.sleepMs !== undefined) await sleep(command.sleepMs);
  if (command.stallMs !== undefined) {
    const until = Date.now() + command.stallMs;
    while (Date.now() < until) {
      // Busy: timers (the lease renewal) cannot fire.
    }
  }
  return { pid: process.pid, fence };
}

function run(command: RunCommand): void {
  const fn =
    command.mode === 'transactional'
      ? transactional(store, (ctx, client) => body(command, ctx, client))
      : (ctx: RunContext) => body(command, ctx, pool);
  executor.run(command.key, fn).then(
    (value) => print({ event: 'settled', id: command.id, ok: true, value }),
    (error: unknown) =>
      print({
        event: 'settled',
        id: command.id,
        ok: false,
        code: (error as { code?: unknown }).code,
        message: String((error as Error).message),
      }),
  );
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as RunCommand | { op: 'exit' };
  if (command.op === 'run') run(command);
  else {
    void executor
      .close()
      .then(() => store.close())
      .then(() => pool.end())
      .then(() => process.exit(0));
  }
});
print({ event: 'ready', pid: process.pid });
