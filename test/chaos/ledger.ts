// The execution ledger: one PostgreSQL row per execution of fn, written from inside fn. It lives
// in a database of its own, created for one chaos run and dropped at its end; with
// `--store postgres` the store's table lives there too.
//
// `executions` is written on a pool of the worker's own, straight to the database, committed at
// once: it is the evidence that fn ran, whatever happens to fn's transaction afterwards. In the
// transactional mode fn also writes a `ledger` row on its transaction's client: the database
// effect that must exist once per key, committed with the record or not at all.
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** One execution of fn, as written by the worker that ran it. */
export interface ExecutionRow {
  readonly key: string;
  readonly slot: number;
  readonly pid: number;
  readonly token: number;
  /** When fn was entered (just after the claim). */
  readonly startedAt: number;
  /** Just before the row was inserted: the side effect is done by then. */
  readonly writtenAt: number;
}

/** A row fn wrote inside its transaction (transactional mode): visible only if it committed. */
export interface LedgerRow {
  readonly key: string;
  readonly pid: number;
  readonly token: number;
}

const EXECUTIONS_DDL = `
CREATE TABLE executions (
  id         bigserial PRIMARY KEY,
  key        text NOT NULL,
  slot       integer NOT NULL,
  pid        integer NOT NULL,
  token      bigint NOT NULL,
  started_at double precision NOT NULL,
  written_at double precision NOT NULL
)`;

/** No unique constraint on purpose: a second committed row of a key must show, not fail. */
const LEDGER_DDL = `
CREATE TABLE ledger (
  id    bigserial PRIMARY KEY,
  key   text NOT NULL,
  pid   integer NOT NULL,
  token bigint NOT NULL
)`;

/** The run's own database on the server at `serverUrl` (a URL naming an existing database). */
export class LedgerDatabase {
  private constructor(
    private readonly serverUrl: string,
    readonly name: string,
    readonly url: string,
  ) {}

  static async create(serverUrl: string): Promise<LedgerDatabase> {
    const name = `chaos_${randomBytes(5).toString('hex')}`;
    await withClient(serverUrl, (client) => client.query(`CREATE DATABASE ${name}`));
    const url = new URL(serverUrl);
    url.pathname = `/${name}`;
    const database = new LedgerDatabase(serverUrl, name, url.toString());
    await withClient(database.url, async (client) => {
      await client.query(EXECUTIONS_DDL);
      await client.query(LEDGER_DDL);
    });
    return database;
  }

  async rows(): Promise<ExecutionRow[]> {
    const result = await withClient(this.url, (client) =>
      client.query<{
        key: string;
        slot: number;
        pid: number;
        token: string;
        started_at: number;
        written_at: number;
      }>('SELECT key, slot, pid, token, started_at, written_at FROM executions ORDER BY id'),
    );
    return result.rows.map((row) => ({
      key: row.key,
      slot: row.slot,
      pid: row.pid,
      token: Number(row.token),
      startedAt: row.started_at,
      writtenAt: row.written_at,
    }));
  }

  /** The committed rows fn wrote inside its transactions. */
  async ledgerRows(): Promise<LedgerRow[]> {
    const result = await withClient(this.url, (client) =>
      client.query<{ key: string; pid: number; token: string }>(
        'SELECT key, pid, token FROM ledger ORDER BY id',
      ),
    );
    return result.rows.map((row) => ({ key: row.key, pid: row.pid, token: Number(row.token) }));
  }

  async drop(): Promise<void> {
    await withClient(this.serverUrl, (client) =>
      client.query(`DROP DATABASE IF EXISTS ${this.name} WITH (FORCE)`),
    );
  }
}

/** The writing side, used by a worker's fn. */
export class LedgerWriter {
  private readonly pool: pg.Pool;

  constructor(url: string, connections: number, applicationName?: string) {
    this.pool = new pg.Pool({
      connectionString: url,
      max: connections,
      ...(applicationName === undefined ? {} : { application_name: applicationName }),
    });
    // An idle client's error (e.g. the server restarting) must not crash the worker.
    this.pool.on('error', () => {});
  }

  async record(row: ExecutionRow): Promise<void> {
    await this.pool.query(
      'INSERT INTO executions (key, slot, pid, token, started_at, written_at) VALUES ($1, $2, $3, $4, $5, $6)',
      [row.key, row.slot, row.pid, row.token, row.startedAt, row.writtenAt],
    );
  }

  close(): Promise<void> {
    return this.pool.end();
  }
}

/** Writes fn's ledger row on the client of its transaction. */
export async function writeLedgerRow(client: pg.ClientBase, row: LedgerRow): Promise<void> {
  await client.query('INSERT INTO ledger (key, pid, token) VALUES ($1, $2, $3)', [
    row.key,
    row.pid,
    row.token,
  ]);
}

async function withClient<T>(url: string, use: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await use(client);
  } finally {
    await client.end();
  }
}
