// The store's side of a chaos run: the server the workers' executors use, what workers are told
// about it, and its server faults. Redis: a redis-server of the harness's own. PostgreSQL: the
// shared server, the store's table in the run's own database, reached by the workers through a
// TCP proxy of the harness's own.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { PostgresStore } from '../../src/store/postgres/index.js';
import { OwnRedisServer } from '../helpers/redis.js';
import { startChaosCluster } from './cluster-faults.js';
import type { ServerFaultSet } from './faults.js';
import type { LedgerDatabase } from './ledger.js';
import type { ChaosOptions } from './options.js';
import { PostgresFaults } from './postgres-faults.js';
import type { WorkerStoreConfig } from './protocol.js';
import { RedisFaults } from './redis-faults.js';
import type { Storm } from './storm.js';
import { FaultyProxy } from './tcp-proxy.js';

export interface ChaosBackend {
  /** What each worker is told about the store. */
  readonly workerStore: WorkerStoreConfig;
  /**
   * How long a worker's lane pauses after a caller got STORE_UNAVAILABLE. 0 on Redis, whose
   * client queues commands while it reconnects (callers wait out the outage). A refused
   * PostgreSQL connection fails a call at once, and 32 lanes would burn the rest of the
   * schedule in an outage of a few seconds, leaving nothing for the faults planned after it.
   */
  readonly unavailableBackoffMs: number;
  /** The server faults, aimed at the storm's workers. */
  faults(storm: Storm): Promise<ServerFaultSet>;
  /** Stops and deletes what it started (not the ledger's database). */
  close(): Promise<void>;
  /** The Redis server's memory (INFO memory), for the soak; undefined on other stores. */
  readonly redisMemory?: () => Promise<{ usedMemory: number; usedMemoryRss: number }>;
}

/** See {@link ChaosBackend.unavailableBackoffMs}. */
const UNAVAILABLE_BACKOFF_MS = 500;
/** The PostgreSQL store's table, in the run's database. */
const RECORDS_TABLE = 'idempotency_records';

export function startBackend(options: ChaosOptions, ledger: LedgerDatabase): Promise<ChaosBackend> {
  if (options.store === 'cluster') return startCluster(options);
  return options.store === 'redis' ? startRedis(options) : startPostgres(options, ledger);
}

async function startRedis(options: ChaosOptions): Promise<ChaosBackend> {
  const redisDir = await mkdtemp(join(tmpdir(), 'chaos-redis-'));
  const persistence = options.persistence
    ? ['--appendonly', 'yes', '--appendfsync', 'always']
    : ['--appendonly', 'no'];
  let server: OwnRedisServer;
  try {
    server = await OwnRedisServer.start([...persistence, '--dir', redisDir]);
  } catch (error) {
    await rm(redisDir, { recursive: true, force: true });
    throw error;
  }
  // Every worker connection goes through the harness's proxy, so it can be partitioned or
  // slowed without a reset; the harness's own admin connections go to Redis directly.
  const proxy = await FaultyProxy.start('127.0.0.1', server.port);
  const admin = new Redis(server.url, { maxRetriesPerRequest: 3 });
  admin.on('error', () => {});
  return {
    workerStore: { kind: 'redis', url: `redis://127.0.0.1:${proxy.port}` },
    unavailableBackoffMs: 0,
    faults: async (storm) => new RedisFaults(options, storm, server, proxy),
    redisMemory: async () => {
      const info = String(await admin.call('INFO', 'memory'));
      const field = (name: string) => Number(new RegExp(`^${name}:(\\d+)`, 'm').exec(info)?.[1]);
      return { usedMemory: field('used_memory'), usedMemoryRss: field('used_memory_rss') };
    },
    close: async () => {
      admin.disconnect();
      await proxy.close();
      await server.stop();
      await rm(redisDir, { recursive: true, force: true });
    },
  };
}

async function startPostgres(options: ChaosOptions, ledger: LedgerDatabase): Promise<ChaosBackend> {
  const pool = new pg.Pool({ connectionString: ledger.url, max: 1 });
  try {
    await new PostgresStore({ pool, table: RECORDS_TABLE, cleanupIntervalMs: 0 }).ensureSchema();
  } finally {
    await pool.end();
  }
  const direct = new URL(ledger.url);
  const proxy = await FaultyProxy.start(direct.hostname, Number(direct.port || 5432));
  const proxied = new URL(ledger.url);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  return {
    workerStore: {
      kind: 'postgres',
      url: proxied.toString(),
      table: RECORDS_TABLE,
      transactional: options.transactional,
    },
    unavailableBackoffMs: UNAVAILABLE_BACKOFF_MS,
    faults: (storm) => PostgresFaults.open(options, storm, ledger.url, proxy, RECORDS_TABLE),
    close: () => proxy.close(),
  };
}

async function startCluster(options: ChaosOptions): Promise<ChaosBackend> {
  const cluster = await startChaosCluster();
  return {
    workerStore: { kind: 'cluster', nodes: cluster.startupNodes },
    unavailableBackoffMs: 0,
    faults: async (storm) => cluster.faults(options, storm),
    close: () => cluster.stop(),
  };
}
