import { type TableNames, tableNames } from './names.js';

/**
 * Every SQL statement of the PostgreSQL store, built once per table. Each is one statement, so
 * each compare-and-set runs under the row lock its UPDATE takes, never as a read then a write
 * from Node. Every expiry is counted on the database's clock (`clock_timestamp()`, which, unlike
 * `now()`, keeps moving inside a transaction): the one clock all processes share.
 *
 * A row: `key_hash` (SHA-256 of the record key, the primary key), `key` (for people), `token`
 * (the lease token; kept once completed, so a completion can be recognised as ours), `record`
 * (the encoded record; NULL while running), `expires_at` (end of the lease, then of the
 * retention), `fence` (the last fencing token handed out).
 *
 * States: no row, or `expires_at` passed: absent. `record` set: completed. `record` NULL and a
 * lease token in `token`: running. Anything else: not ours to read.
 */
export interface Statements {
  /** $1 key_hash, $2 key, $3 token, $4 lease ms. One row back when claimed. */
  readonly claim: string;
  /** $1 key_hash. A row `{ token, record, ttl_ms }` when live. */
  readonly read: string;
  /** $1 key_hash, $2 token, $3 lease ms, $4 channel, $5 payload. One row back when renewed. */
  readonly renew: string;
  /** $1 key_hash, $2 token, $3 record, $4 ttl ms, $5 channel, $6 payload. One row when stored. */
  readonly complete: string;
  /** $1 key_hash, $2 token. One row back when the key holds the record our lease completed. */
  readonly completedBy: string;
  /** $1 key_hash, $2 token, $3 channel, $4 payload. One row back when released. */
  readonly release: string;
  /** $1 key_hash, $2 token. `{ fence }` (text) when the lease is still ours. */
  readonly fence: string;
  /** $1 key_hash. `{ running, deleted }`: running is NULL when no live row. */
  readonly forget: string;
  /** $1 how many rows at most. Deletes expired rows; rowCount is how many. */
  readonly deleteExpired: string;
  /** The DDL, in order, run in one transaction under an advisory lock. */
  readonly ddl: readonly string[];
}

const ms = (param: string) => `clock_timestamp() + ${param}::float8 * interval '1 millisecond'`;
const LIVE_LEASE = `token = $2 AND record IS NULL AND expires_at > clock_timestamp()`;

export function statementsFor(names: TableNames): Statements {
  const t = names.table;
  return {
    claim: `INSERT INTO ${t} AS r (key_hash, key, token, record, expires_at)
VALUES ($1, $2, $3, NULL, ${ms('$4')})
ON CONFLICT (key_hash) DO UPDATE
  SET key = EXCLUDED.key, token = EXCLUDED.token, record = NULL, expires_at = EXCLUDED.expires_at
  WHERE r.expires_at <= clock_timestamp()
RETURNING 1 AS claimed`,
    read: `SELECT token, record,
  ceil(extract(epoch FROM expires_at - clock_timestamp()) * 1000)::float8 AS ttl_ms
FROM ${t} WHERE key_hash = $1 AND expires_at > clock_timestamp()`,
    renew: `WITH renewed AS (
  UPDATE ${t} SET expires_at = ${ms('$3')}
  WHERE key_hash = $1 AND ${LIVE_LEASE} RETURNING 1)
SELECT pg_notify($4, $5) FROM renewed`,
    complete: `WITH completed AS (
  UPDATE ${t} SET record = $3, expires_at = ${ms('$4')}
  WHERE key_hash = $1 AND ${LIVE_LEASE} RETURNING 1)
SELECT pg_notify($5, $6) FROM completed`,
    completedBy: `SELECT 1 FROM ${t}
WHERE key_hash = $1 AND token = $2 AND record IS NOT NULL AND expires_at > clock_timestamp()`,
    release: `WITH released AS (
  UPDATE ${t} SET token = NULL, expires_at = clock_timestamp()
  WHERE key_hash = $1 AND ${LIVE_LEASE} RETURNING 1)
SELECT pg_notify($3, $4) FROM released`,
    fence: `UPDATE ${t}
SET fence = greatest(fence + 1, floor(extract(epoch FROM clock_timestamp()) * 1000000)::bigint)
WHERE key_hash = $1 AND ${LIVE_LEASE}
RETURNING fence::text AS fence`,
    forget: `WITH target AS (
  SELECT key_hash, (record IS NULL AND token ~ '^[0-9a-f]{32}$') AS running
  FROM ${t} WHERE key_hash = $1 AND expires_at > clock_timestamp() FOR UPDATE),
deleted AS (
  DELETE FROM ${t} AS r USING target
  WHERE r.key_hash = target.key_hash AND NOT target.running RETURNING 1)
SELECT (SELECT running FROM target) AS running, (SELECT count(*) FROM deleted)::int AS deleted`,
    deleteExpired: `DELETE FROM ${t} WHERE key_hash IN (
  SELECT key_hash FROM ${t} WHERE expires_at <= clock_timestamp()
  ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
AND expires_at <= clock_timestamp()`,
    ddl: [
      ...(names.schema === undefined ? [] : [`CREATE SCHEMA IF NOT EXISTS ${names.schema}`]),
      tableDdl(t),
      `CREATE INDEX IF NOT EXISTS ${names.expiryIndex} ON ${t} (expires_at)`,
    ],
  };
}

/** The table, as docs/postgres.md shows it for teams that run their own migrations. */
export function tableDdl(table: string): string {
  return `CREATE TABLE IF NOT EXISTS ${table} (
  key_hash   bytea       PRIMARY KEY,
  key        text        NOT NULL,
  token      text,
  record     bytea,
  expires_at timestamptz NOT NULL,
  fence      bigint      NOT NULL DEFAULT 0
)`;
}

/**
 * The DDL `ensureSchema()` runs, as SQL text, for teams that apply schema changes with their own
 * migration tool: `schemaSql({ table: 'idempotency_records', schema: 'app' })`.
 */
export function schemaSql(
  options: { readonly table?: string; readonly schema?: string } = {},
): string {
  const names = tableNames(options.table ?? 'idempotency_records', options.schema);
  return statementsFor(names)
    .ddl.map((statement) => `${statement};\n`)
    .join('');
}
