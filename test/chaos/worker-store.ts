// The store a chaos worker's executor runs on, configured as a user would hand it over. Its
// connections carry the worker's name, so the parent can find (and kill) them: `connectionName`
// on Redis, which duplicate() passes on to the store's connections; `application_name` on
// PostgreSQL, for the pool (the store's LISTEN connection names itself).
import { Cluster, Redis } from 'ioredis';
import pg from 'pg';
import type { Store } from '../../src/index.js';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import type { WorkerStoreConfig } from './protocol.js';

export interface WorkerStore {
  readonly store: Store;
  /** The PostgreSQL store, for `transactional(store, …)`; undefined on Redis. */
  readonly postgres: PostgresStore | undefined;
  /** Closes what the worker opened for the store (after `store.close()`). */
  close(): Promise<void>;
}

export function openWorkerStore(
  config: WorkerStoreConfig,
  name: string,
  timeoutMs: number,
): WorkerStore {
  if (config.kind === 'cluster') {
    // `redisOptions.connectionName` reaches every node connection the store opens.
    const client = new Cluster([...config.nodes], { redisOptions: { connectionName: name } });
    client.on('error', () => {});
    return {
      store: new RedisStore({ redis: client, commandTimeoutMs: timeoutMs }),
      postgres: undefined,
      close: async () => client.disconnect(),
    };
  }
  if (config.kind === 'redis') {
    const client = new Redis(config.url, { connectionName: name });
    client.on('error', () => {});
    return {
      store: new RedisStore({ redis: client, commandTimeoutMs: timeoutMs }),
      postgres: undefined,
      close: async () => client.disconnect(),
    };
  }
  // pg's default pool size (10): the transactional mode holds one per running execution.
  const pool = new pg.Pool({ connectionString: config.url, application_name: name });
  // An idle client's error (its backend terminated) must not crash the worker.
  pool.on('error', () => {});
  const store = new PostgresStore({ pool, table: config.table, queryTimeoutMs: timeoutMs });
  return { store, postgres: store, close: () => pool.end() };
}
