import { AsyncLocalStorage } from 'node:async_hooks';
import type { Client, Pool, PoolClient, QueryConfig, QueryResult, QueryResultRow } from 'pg';
import { monotonicNow } from '../../clock.js';
import { InvalidOptionError, StoreUnavailableError } from '../../core/errors.js';
import { newLeaseToken } from '../lease-token.js';
import {
  type EntryState,
  isLeaseToken,
  type KeyListener,
  type Lease,
  type Store,
  StoreDataError,
  type Subscription,
} from '../store.js';
import { channelOf, ddlLockOf, rowIdOf, type TableNames, tableNames } from './names.js';
import {
  type ListenerClientFactory,
  NotificationListener,
  withTimeout,
} from './notification-listener.js';
import { type Statements, statementsFor } from './statements.js';

/** The part of a `pg.Pool` the store uses. */
export type PostgresPool = Pick<Pool, 'query' | 'connect' | 'options'>;

/** Options of {@link PostgresStore}. */
export interface PostgresStoreOptions {
  /** The user's pool. The store runs its statements on it and never ends it. */
  readonly pool: PostgresPool;
  /**
   * The table holding one row per record key; an SQL identifier (letters, digits, `_`).
   * @defaultValue `'idempotency_records'`
   */
  readonly table?: string;
  /**
   * The table's schema; without one the table is found through `search_path`.
   * @defaultValue none
   */
  readonly schema?: string;
  /**
   * Upper bound on each statement (and on getting a connection for it), ms. Past it the call
   * fails with `IDEMPOTENCY_STORE_UNAVAILABLE`.
   * @defaultValue `2_000`
   */
  readonly queryTimeoutMs?: number;
  /**
   * How often this store deletes expired rows, ms; 0 turns it off (then run
   * {@link PostgresStore.deleteExpired} yourself). Readers never see expired rows either way.
   * @defaultValue `60_000`
   */
  readonly cleanupIntervalMs?: number;
  /**
   * Rows deleted per cleanup statement; a cleanup runs at most 10 such statements.
   * @defaultValue `1_000`
   */
  readonly cleanupBatchSize?: number;
  /**
   * Makes the store's one LISTEN connection: a new, unconnected `pg.Client`. Behind a
   * transaction-pooling proxy (PgBouncer `pool_mode = transaction`), point it at PostgreSQL
   * itself or at a session-mode pool: LISTEN does not survive transaction pooling.
   * @defaultValue a client of the pool's own class with the pool's connection options
   */
  readonly listenerClient?: ListenerClientFactory;
}

/** The defaults of {@link PostgresStoreOptions}. */
export const postgresStoreDefaults = Object.freeze({
  table: 'idempotency_records',
  queryTimeoutMs: 2_000,
  cleanupIntervalMs: 60_000,
  cleanupBatchSize: 1_000,
});

/** At most this many cleanup statements per cleanup run: bounded work per tick. */
const CLEANUP_BATCHES_PER_RUN = 10;
/** The longest base64 payload sent in a notification; PostgreSQL's limit is 8000 bytes. */
const MAX_PAYLOAD_CHARS = 7_000;

/**
 * The PostgreSQL store: one row per record key in one table (lease token, then record), its
 * expiry on the database's clock, waiters woken by LISTEN/NOTIFY on one connection of its own.
 * `pg` is an optional peer dependency, loaded only through `idempotent-executor/postgres`; this
 * module imports only its types, and uses the pool handed in.
 *
 * @example
 * ```ts
 * const store = new PostgresStore({ pool: new pg.Pool({ connectionString }) });
 * await store.ensureSchema();
 * const executor = new IdempotentExecutor({ store, namespace: 'payments' });
 * ```
 */
export class PostgresStore implements Store {
  /** @internal */
  readonly pool: PostgresPool;
  /** @internal */
  readonly names: TableNames;
  /** @internal */
  readonly sql: Statements;
  /** @internal */
  readonly timeoutMs: number;
  private readonly listener: NotificationListener;
  private readonly cleanupBatchSize: number;
  private readonly cleanupTimer: NodeJS.Timeout | undefined;
  private cleaning: Promise<unknown> | undefined;
  private closed = false;

  constructor(options: PostgresStoreOptions) {
    if (options === null || typeof options !== 'object') {
      throw new InvalidOptionError('options', 'an object with a `pool`', options);
    }
    const { pool } = options;
    if (
      pool === null ||
      typeof pool !== 'object' ||
      typeof pool.query !== 'function' ||
      typeof pool.connect !== 'function'
    ) {
      throw new InvalidOptionError('pool', 'a pg.Pool', pool);
    }
    this.pool = pool;
    this.names = tableNames(options.table ?? postgresStoreDefaults.table, options.schema);
    this.sql = statementsFor(this.names);
    this.timeoutMs = integerOption(
      'queryTimeoutMs',
      options.queryTimeoutMs,
      postgresStoreDefaults.queryTimeoutMs,
      1,
    );
    const cleanupIntervalMs = integerOption(
      'cleanupIntervalMs',
      options.cleanupIntervalMs,
      postgresStoreDefaults.cleanupIntervalMs,
      0,
    );
    this.cleanupBatchSize = integerOption(
      'cleanupBatchSize',
      options.cleanupBatchSize,
      postgresStoreDefaults.cleanupBatchSize,
      1,
    );
    const createClient = options.listenerClient ?? defaultListenerClient(pool);
    if (typeof createClient !== 'function') {
      throw new InvalidOptionError(
        'listenerClient',
        'a function returning a pg.Client',
        createClient,
      );
    }
    this.listener = new NotificationListener(createClient, this.timeoutMs);
    if (cleanupIntervalMs > 0) {
      this.cleanupTimer = setInterval(() => {
        this.cleaning ??= this.deleteExpired()
          .catch(noop)
          .finally(() => {
            this.cleaning = undefined;
          });
      }, cleanupIntervalMs);
      this.cleanupTimer.unref();
    }
  }

  /**
   * Creates the schema (when one was given), the table and its index if missing. Idempotent and
   * safe to call on every start from every process at once: the DDL runs in one transaction
   * under an advisory lock of its own, so concurrent calls do not trip over each other.
   */
  async ensureSchema(): Promise<void> {
    const client = await this.connectClient();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1::bigint)', [
        ddlLockOf(this.names.identity),
      ]);
      for (const statement of this.sql.ddl) await client.query(statement);
      await client.query('COMMIT');
      client.release();
    } catch (error) {
      await client.query('ROLLBACK').catch(noop);
      client.release(error instanceof Error ? error : true);
      throw error;
    }
  }

  async claim(key: string, leaseMs: number): Promise<Lease | null> {
    const start = monotonicNow();
    const token = newLeaseToken();
    const id = rowIdOf(key);
    const { rowCount } = await this.query(this.sql.claim, [id, key, token, leaseMs]);
    if (rowCount !== 1) return null;
    return new PostgresLease(this, key, id, token, start + leaseMs - driftOf(leaseMs));
  }

  async read(key: string): Promise<EntryState> {
    const { rows } = await this.query<RowState>(this.sql.read, [rowIdOf(key)]);
    const row = rows[0];
    if (row === undefined) return ABSENT;
    if (row.record !== null) return { state: 'completed', bytes: row.record, ttlMs: row.ttl_ms };
    if (row.token !== null && isLeaseToken(Buffer.from(row.token))) {
      return { state: 'running', ttlMs: row.ttl_ms };
    }
    throw new StoreDataError(
      `The row of ${key} holds neither a record nor a lease token (not written by this library)`,
    );
  }

  async subscribe(key: string, listener: KeyListener): Promise<Subscription> {
    if (this.closed) throw new Error('The store is closed');
    return this.listener.subscribe(this.channelOf(key), listener);
  }

  async forget(key: string): Promise<'deleted' | 'absent' | 'running'> {
    const { rows } = await this.query<{ running: boolean | null; deleted: number }>(
      this.sql.forget,
      [rowIdOf(key)],
    );
    const row = rows[0];
    if (row === undefined || row.running === null) return 'absent';
    return row.running ? 'running' : 'deleted';
  }

  /**
   * Deletes expired rows (past their lease or retention; readers already treat them as
   * absent): statements of `cleanupBatchSize` rows, oldest first, skipping rows other sessions
   * hold, until one deletes less than a full batch or 10 have run. Resolves with the count.
   * The store runs it every `cleanupIntervalMs`; call it yourself when that is 0.
   */
  async deleteExpired(): Promise<number> {
    let deleted = 0;
    for (let batch = 0; batch < CLEANUP_BATCHES_PER_RUN; batch++) {
      const { rowCount } = await this.query(this.sql.deleteExpired, [this.cleanupBatchSize]);
      deleted += rowCount ?? 0;
      if ((rowCount ?? 0) < this.cleanupBatchSize) break;
    }
    return deleted;
  }

  /**
   * Stops the cleanup timer and closes the LISTEN connection: what the store opened. The pool
   * is the caller's, and stays open. Idempotent.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.cleanupTimer);
    await Promise.all([this.listener.close(), this.cleaning?.catch(noop)]);
  }

  /** @internal The backend pid of the LISTEN connection (tests terminate it). */
  get listenerBackendPid(): number | undefined {
    return this.listener.backendPid;
  }

  /** @internal */
  channelOf(key: string): string {
    return channelOf(this.names.identity, key);
  }

  /** @internal A statement on the pool, bounded by `queryTimeoutMs` (connecting included). */
  query<R extends QueryResultRow = QueryResultRow>(
    text: string,
    values: unknown[],
  ): Promise<QueryResult<R>> {
    const config = { text, values, query_timeout: this.timeoutMs } as QueryConfig;
    return withTimeout(this.pool.query<R>(config), this.timeoutMs, 'a statement').catch(translate);
  }

  /** @internal A client of the pool for a transaction, its checkout bounded. */
  connectClient(): Promise<PoolClient> {
    // The callback form: pg-pool calls it the moment it hands the client out, so the client
    // has an 'error' listener before anything else of its connection is parsed. With the
    // promise form the listener would come a turn later, after, say, a FATAL that arrived in
    // the same chunk as the answer that freed the client for us.
    const checkout = new Promise<PoolClient>((resolve, reject) => {
      this.pool.connect((error, client) => {
        if (error !== undefined || client === undefined) reject(error);
        else resolve(listenedWhileHeld(client));
      });
    });
    return withTimeout(checkout, this.timeoutMs, 'a connection').catch((error: unknown) => {
      // The checkout may still succeed later: give that client back instead of leaking it.
      checkout.then((client) => client.release(), noop);
      throw error;
    });
  }
}

interface RowState {
  token: string | null;
  record: Buffer | null;
  ttl_ms: number;
}

/** An open transaction of the transactional mode, waiting for its completion record. */
interface PendingTransaction {
  readonly client: PoolClient;
}

/**
 * The lease a transactional run is looking for: {@link PostgresLease.fencingToken} puts itself
 * here when called inside `leaseScope.run()`. It is the one path from fn's `RunContext` to the
 * store's lease without a change to the executor (see transactional.ts).
 * @internal
 */
export const leaseScope = new AsyncLocalStorage<{ lease?: PostgresLease }>();

/** @internal */
export class PostgresLease implements Lease {
  validUntil: number;
  private pending: PendingTransaction | undefined;
  /**
   * A transactional completion failed with its COMMIT's outcome unknown: from then on only the
   * row can say whether it happened. A plain completion would store a record for effects that
   * may have been rolled back.
   */
  private transactionInDoubt = false;
  /** Set once fn's transaction is open: its writes commit with the record or not at all. */
  effectsCommitWithRecord = false;

  constructor(
    readonly store: PostgresStore,
    private readonly key: string,
    private readonly id: Buffer,
    private readonly token: string,
    validUntil: number,
  ) {
    this.validUntil = validUntil;
  }

  async extend(leaseMs: number, notice: Uint8Array): Promise<boolean> {
    const start = monotonicNow();
    const { rowCount } = await this.store.query(this.store.sql.renew, [
      this.id,
      this.token,
      leaseMs,
      this.store.channelOf(this.key),
      payloadOf(notice),
    ]);
    if (rowCount === 1) this.validUntil = start + leaseMs - driftOf(leaseMs);
    return rowCount === 1;
  }

  async complete(record: Uint8Array, ttlMs: number): Promise<boolean> {
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      return this.completeInTransaction(pending.client, record, ttlMs);
    }
    if (!this.transactionInDoubt) {
      const { rowCount } = await this.store.query(this.store.sql.complete, [
        ...this.completion(record, ttlMs),
      ]);
      if (rowCount === 1) return true;
    }
    // No live lease need not mean a lost one: an earlier attempt of this completion may have
    // committed with its reply lost (a timeout, a dropped connection). The token stays in a
    // completed row, so a record under our token is ours.
    return this.completedByUs();
  }

  async release(notice: Uint8Array): Promise<boolean> {
    const pending = this.pending;
    if (pending !== undefined) {
      this.pending = undefined;
      await rollBack(pending.client);
    }
    const { rowCount } = await this.store.query(this.store.sql.release, [
      this.id,
      this.token,
      this.store.channelOf(this.key),
      payloadOf(notice),
    ]);
    return rowCount === 1;
  }

  async fencingToken(_fenceTtlMs: number): Promise<number | null> {
    const scope = leaseScope.getStore();
    if (scope !== undefined && scope.lease === undefined) scope.lease = this;
    // The fence lives in the row; once the row is cleaned up, tokens restart from the
    // database's clock in microseconds, above any earlier one (as the Redis counter does).
    const { rows } = await this.store.query<{ fence: string }>(this.store.sql.fence, [
      this.id,
      this.token,
    ]);
    const fence = rows[0]?.fence;
    return fence === undefined ? null : Number(fence);
  }

  /**
   * Opens the transaction fn runs in, and keeps it open after fn returns: the executor encodes
   * the record and calls {@link complete}, which writes it in this transaction and commits. If
   * fn throws, its writes are rolled back at once, and the error takes the plain path.
   * @internal
   */
  async runInTransaction<T>(run: (client: PoolClient) => Promise<T>): Promise<T> {
    if (this.pending !== undefined) {
      throw new Error('This execution already has a transaction open');
    }
    const client = await this.store.connectClient();
    try {
      // READ COMMITTED: the completion's UPDATE must see the row as renewals left it (under
      // REPEATABLE READ a renewal after the snapshot would fail it with a serialization error).
      await client.query('BEGIN ISOLATION LEVEL READ COMMITTED');
    } catch (error) {
      client.release(error instanceof Error ? error : true);
      throw error;
    }
    const pending: PendingTransaction = { client };
    this.effectsCommitWithRecord = true;
    this.pending = pending;
    try {
      return await run(client);
    } catch (error) {
      if (this.pending === pending) {
        this.pending = undefined;
        if (!(await rollBack(client))) {
          // The transaction's own connection is gone (a killed backend, a cut network): fn's
          // error says nothing about its work, and its writes died with the connection. A
          // transient library error is never cached, so the next call runs fn again.
          throw new StoreUnavailableError(
            `The connection of the transaction of key "${this.key}" was lost; its writes were rolled back`,
            this.key,
            { cause: error },
          );
        }
      }
      throw error;
    }
  }

  /**
   * Writes the record in fn's transaction and commits: the compare-and-set on the token runs
   * under the row lock its UPDATE takes, so a caller that took the key over (its claim an
   * UPDATE of the same row) either committed before — and our UPDATE, re-checking the row as
   * READ COMMITTED does after a lock wait, matches nothing and we roll back — or waits for our
   * COMMIT and then finds a completed row it cannot claim.
   */
  private async completeInTransaction(
    client: PoolClient,
    record: Uint8Array,
    ttlMs: number,
  ): Promise<boolean> {
    let stored: boolean;
    try {
      const config = {
        text: this.store.sql.complete,
        values: this.completion(record, ttlMs),
        query_timeout: this.store.timeoutMs,
      } as QueryConfig;
      const { rowCount } = await client.query(config);
      stored = rowCount === 1;
    } catch {
      // No COMMIT was sent: fn's writes are gone with the transaction. Not stored, then; a
      // retried complete() must not store the record alone (a plain completion would keep an
      // outcome whose writes never committed, and hand the caller fn's value as if they had).
      await rollBack(client);
      return false;
    }
    if (!stored) {
      await rollBack(client);
      return false;
    }
    try {
      await client.query({ text: 'COMMIT', query_timeout: this.store.timeoutMs } as QueryConfig);
    } catch (error) {
      // Did the COMMIT happen? Only the row knows; complete() retried asks it.
      this.transactionInDoubt = true;
      client.release(error instanceof Error ? error : true);
      throw error;
    }
    client.release();
    return true;
  }

  private completion(record: Uint8Array, ttlMs: number): unknown[] {
    return [
      this.id,
      this.token,
      Buffer.from(record.buffer, record.byteOffset, record.byteLength),
      ttlMs,
      this.store.channelOf(this.key),
      payloadOf(record),
    ];
  }

  private async completedByUs(): Promise<boolean> {
    const { rowCount } = await this.store.query(this.store.sql.completedBy, [this.id, this.token]);
    return rowCount === 1;
  }
}

/**
 * pg-pool takes its own 'error' listener off a client it hands out. A connection lost while the
 * store holds the client idle (fn's transaction, while fn awaits something else) would then emit
 * 'error' with no listener, which ends the process. With this one, the loss shows as the next
 * query's error instead. It comes off when the client is released.
 */
function listenedWhileHeld(client: PoolClient): PoolClient {
  const onError = () => {};
  const release = client.release.bind(client);
  client.on('error', onError);
  client.release = (error?: Error | boolean) => {
    client.removeListener('error', onError);
    return release(error);
  };
  return client;
}

/** Rolls back and returns the client; a client that cannot even roll back is destroyed. */
/** Rolls back and returns the client: true; a client that cannot even roll back is destroyed: false. */
async function rollBack(client: PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    client.release();
    return true;
  } catch (error) {
    // Ending the connection rolls the transaction back on the server.
    client.release(error instanceof Error ? error : true);
    return false;
  }
}

/** A notification's payload: the bytes in base64, or '' ("read the row") when too large. */
function payloadOf(bytes: Uint8Array): string {
  if (Math.ceil(bytes.byteLength / 3) * 4 > MAX_PAYLOAD_CHARS) return '';
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * How much of a lease the local clock may be off by over its length (as redlock counts it):
 * `validUntil` is counted on Node's monotonic clock from before the claim was sent, the expiry itself on
 * the database's.
 */
function driftOf(leaseMs: number): number {
  return Math.round(leaseMs * 0.01) + 2;
}

function defaultListenerClient(pool: PostgresPool): ListenerClientFactory {
  const ClientClass = (pool as { Client?: new (config: unknown) => Client }).Client;
  if (typeof ClientClass !== 'function') {
    return () => {
      throw new Error(
        'The pool has no Client class to open a LISTEN connection with: pass `listenerClient`',
      );
    };
  }
  // keepAlive: a LISTEN connection is idle for long stretches; without TCP keepalives a silently
  // dropped one would go unnoticed, and with it every notification.
  return () =>
    new ClientClass({
      ...pool.options,
      keepAlive: true,
      application_name: 'idempotent-executor listener',
    });
}

function integerOption(name: string, value: unknown, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min) {
    throw new InvalidOptionError(name, `an integer of at least ${min}`, value);
  }
  return value;
}

/**
 * Errors that say the row is not ours to read become {@link StoreDataError}; any other failure
 * means the database is unreachable (or the table is missing), as the executor reports it.
 */
function translate(error: unknown): never {
  const code = (error as { code?: unknown } | null)?.code;
  // 22P02 invalid text representation, 22021 bad bytes for an encoding: a column holds data of
  // a shape this library never writes.
  if (code === '22P02' || code === '22021') {
    throw new StoreDataError(String((error as Error).message), { cause: error });
  }
  throw error;
}

const ABSENT: EntryState = { state: 'absent' };

function noop(): void {}
