// Shared by the PostgreSQL tests: a pool on the PostgreSQL at POSTGRES_URL (default
// postgresql://postgres@127.0.0.1:5432/test), and a schema of its own per test, dropped after.
import pg from 'pg';
import { PostgresStore, type PostgresStoreOptions } from '../../src/store/postgres/index.js';

export const POSTGRES_URL = process.env.POSTGRES_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

export function connectPool(max = 10): pg.Pool {
  const pool = new pg.Pool({ connectionString: POSTGRES_URL, max });
  pool.on('error', () => {});
  return pool;
}

let counter = 0;
/** A fresh schema name: unique per process and call. */
export const nextSchema = (): string => `ie_test_${process.pid}_${Date.now()}_${counter++}`;

/** A store in a fresh schema, its table created. */
export async function storeInNewSchema(
  pool: pg.Pool,
  options: Partial<PostgresStoreOptions> = {},
): Promise<PostgresStore> {
  const store = new PostgresStore({ pool, schema: nextSchema(), ...options });
  await store.ensureSchema();
  return store;
}

/** Drops a test's schema and everything in it. */
export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
}

/** The schema a store was made with (tests only). */
export function schemaOf(store: PostgresStore): string {
  return store.names.identity.split('.')[0] as string;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
