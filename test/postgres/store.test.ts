// The PostgreSQL store in one process against a real PostgreSQL: unreachable database, rows it
// did not write, notifications (large outcomes, a lost LISTEN connection), cleanup, DDL, names,
// and the transactional mode's commit and rollback. Each test has a schema of its own.
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import pg from 'pg';
import { IdempotentExecutor, MemoryStore } from '../../src/index.js';
import { PostgresStore, schemaSql, transactional } from '../../src/store/postgres/index.js';
import {
  connectPool,
  dropSchema,
  nextSchema,
  schemaOf,
  sleep,
  storeInNewSchema,
} from './support.js';

const pool = connectPool();

async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('PostgresStore', () => {
  let store: PostgresStore;
  let closing: (() => Promise<unknown>)[];

  beforeEach(async () => {
    store = await storeInNewSchema(pool, { cleanupIntervalMs: 0 });
    closing = [];
  });
  afterEach(async () => {
    for (const close of closing.reverse()) await close();
    await store.close();
    await dropSchema(pool, schemaOf(store));
  });
  after(() => pool.end());

  const executorOn = (on: PostgresStore, extra = {}) => {
    const executor = new IdempotentExecutor({ store: on, namespace: 'unit', ...extra });
    closing.push(() => executor.close());
    return executor;
  };
  const table = () => `"${schemaOf(store)}".idempotency_records`;

  it('fails with IDEMPOTENCY_STORE_UNAVAILABLE within its query timeout when the database is unreachable, without running fn', async () => {
    const unreachable = new pg.Pool({ host: '127.0.0.1', port: await closedPort(), user: 'x' });
    unreachable.on('error', () => {});
    const down = new PostgresStore({ pool: unreachable, queryTimeoutMs: 500 });
    closing.push(
      () => unreachable.end(),
      () => down.close(),
    );
    let ran = false;

    const started = Date.now();
    await assert.rejects(
      executorOn(down).run('order-1', async () => {
        ran = true;
      }),
      { code: 'IDEMPOTENCY_STORE_UNAVAILABLE' },
    );

    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
    assert.equal(ran, false);
  });

  it('fails with IDEMPOTENCY_STORE_UNAVAILABLE within its query timeout when the database does not answer', async () => {
    // A server that accepts connections and never says a word.
    const silent = createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const hung = new pg.Pool({ host: '127.0.0.1', port, user: 'x' });
    hung.on('error', () => {});
    const down = new PostgresStore({ pool: hung, queryTimeoutMs: 300 });
    closing.push(
      () => new Promise((resolve) => silent.close(resolve)),
      () => down.close(),
    );
    silent.on('connection', (socket) => closing.push(async () => socket.destroy()));

    const started = Date.now();
    await assert.rejects(
      executorOn(down).run('order-1', async () => 1),
      { code: 'IDEMPOTENCY_STORE_UNAVAILABLE' },
    );

    assert.ok(Date.now() - started < 2_000, `took ${Date.now() - started} ms`);
  });

  it('gives IDEMPOTENCY_CORRUPT_RECORD for a row whose record does not decode', async () => {
    await pool.query(
      `INSERT INTO ${table()} (key_hash, key, token, record, expires_at)
       VALUES (sha256(convert_to($1, 'UTF8')), $1, NULL, '\\x00ff00'::bytea, now() + interval '1 hour')`,
      ['unit:{order-2}'],
    );

    await assert.rejects(
      executorOn(store).run('order-2', async () => 1),
      { code: 'IDEMPOTENCY_CORRUPT_RECORD' },
    );
    await assert.rejects(executorOn(store).inspect('order-2'), {
      code: 'IDEMPOTENCY_CORRUPT_RECORD',
    });
  });

  it('gives IDEMPOTENCY_CORRUPT_RECORD for a row holding neither a record nor a lease token, and forget deletes it', async () => {
    await pool.query(
      `INSERT INTO ${table()} (key_hash, key, token, record, expires_at)
       VALUES (sha256(convert_to($1, 'UTF8')), $1, 'not a token', NULL, now() + interval '1 hour')`,
      ['unit:{order-3}'],
    );
    const executor = executorOn(store);

    await assert.rejects(
      executor.run('order-3', async () => 1),
      { code: 'IDEMPOTENCY_CORRUPT_RECORD' },
    );
    assert.equal(await executor.forget('order-3'), true);
    assert.equal(await executor.run('order-3', async () => 'ran'), 'ran');
  });

  it('wakes a waiter in another store when the record is too large to travel in a notification', async () => {
    const other = await storeInNewSchema(pool, { schema: schemaOf(store), cleanupIntervalMs: 0 });
    closing.push(() => other.close());
    const big = 'x'.repeat(50_000);
    const owner = executorOn(store, { leaseMs: 10_000 });
    const running = owner.run('order-4', async () => {
      await sleep(200);
      return big;
    });
    await sleep(50);

    const started = Date.now();
    const waited = await executorOn(other, { leaseMs: 10_000 }).run('order-4', async () => 'ran');

    assert.equal(waited, big);
    assert.equal(await running, big);
    // Woken by the notification, not by the 10 s lease running out.
    assert.ok(Date.now() - started < 3_000, `waited ${Date.now() - started} ms`);
  });

  it('re-listens after its LISTEN connection is killed, and tells its listeners to resync', async () => {
    const resyncs: number[] = [];
    const messages: Uint8Array[] = [];
    await store.subscribe('unit:{order-5}', {
      onMessage: (bytes) => messages.push(bytes),
      onResync: () => resyncs.push(Date.now()),
    });
    const firstPid = store.listenerBackendPid;
    assert.ok(firstPid !== undefined);

    await pool.query('SELECT pg_terminate_backend($1)', [firstPid]);
    for (let i = 0; i < 100 && resyncs.length === 0; i++) await sleep(20);
    const other = await storeInNewSchema(pool, { schema: schemaOf(store), cleanupIntervalMs: 0 });
    closing.push(() => other.close());
    const lease = await other.claim('unit:{order-5}', 5_000);
    await lease?.complete(new Uint8Array([1, 2, 3]), 60_000);
    for (let i = 0; i < 100 && messages.length === 0; i++) await sleep(20);

    assert.equal(resyncs.length, 1);
    assert.notEqual(store.listenerBackendPid, firstPid);
    assert.deepEqual([...(messages[0] ?? [])], [1, 2, 3]);
  });

  it('treats expired rows as absent and deletes them in bounded batches', async () => {
    const batched = new PostgresStore({
      pool,
      schema: schemaOf(store),
      cleanupIntervalMs: 0,
      cleanupBatchSize: 2,
    });
    closing.push(() => batched.close());
    for (let i = 0; i < 5; i++) await batched.claim(`unit:{order-6-${i}}`, 50);
    const live = await batched.claim('unit:{order-6-live}', 60_000);
    await sleep(100);

    const states = await Promise.all(
      Array.from({ length: 5 }, (_, i) => batched.read(`unit:{order-6-${i}}`)),
    );
    const deleted = await batched.deleteExpired();
    const { rows } = await pool.query(`SELECT key FROM ${table()}`);

    for (const state of states) assert.deepEqual(state, { state: 'absent' });
    assert.equal(deleted, 5);
    assert.deepEqual(
      rows.map((row) => row.key),
      ['unit:{order-6-live}'],
    );
    assert.ok(live !== null);
  });

  it('creates its table once however many stores call ensureSchema at once, and again on every start', async () => {
    const schema = nextSchema();
    const stores = Array.from(
      { length: 6 },
      () => new PostgresStore({ pool, schema, cleanupIntervalMs: 0 }),
    );
    closing.push(async () => {
      await Promise.all(stores.map((created) => created.close()));
      await dropSchema(pool, schema);
    });

    await Promise.all(stores.map((created) => created.ensureSchema()));
    await Promise.all(stores.map((created) => created.ensureSchema()));

    const { rows } = await pool.query(
      `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'idempotency_records'`,
      [schema],
    );
    assert.equal(rows[0].n, 1);
    assert.equal(await executorOn(stores[0]!).run('order-7', async () => 'ok'), 'ok');
  });

  it('refuses table and schema names that are not plain SQL identifiers', () => {
    for (const name of ['records"; DROP TABLE x; --', 'a.b', '', '1abc', 'x'.repeat(49)]) {
      assert.throws(() => new PostgresStore({ pool, table: name }), {
        code: 'IDEMPOTENCY_INVALID_OPTION',
        option: 'table',
      });
      assert.throws(() => new PostgresStore({ pool, schema: name }), {
        code: 'IDEMPOTENCY_INVALID_OPTION',
        option: 'schema',
      });
    }
    assert.match(
      schemaSql({ table: 'records', schema: 'app' }),
      /CREATE TABLE IF NOT EXISTS "app"."records"/,
    );
  });

  describe('transactional', () => {
    beforeEach(async () => {
      await pool.query(
        `CREATE TABLE "${schemaOf(store)}".payments (order_id text NOT NULL, amount int NOT NULL)`,
      );
    });
    const payments = async () =>
      (await pool.query(`SELECT order_id, amount FROM "${schemaOf(store)}".payments`)).rows;

    it("commits fn's writes and the record together; a replay runs nothing", async () => {
      const executor = executorOn(store);
      const pay = transactional(store, async (ctx, client) => {
        await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ($1, $2)`, [
          ctx.key,
          1200,
        ]);
        return { paid: 1200, fence: await ctx.fencingToken() };
      });

      const first = await executor.run('order-8', pay);
      const replay = await executorOn(store).run('order-8', pay);

      assert.deepEqual(replay, first);
      assert.deepEqual(await payments(), [{ order_id: 'order-8', amount: 1200 }]);
      assert.equal((await executor.inspect('order-8')).state, 'completed');
    });

    it("rolls fn's writes back when fn throws, and caches the error as in the plain mode", async () => {
      const executor = executorOn(store);
      const pay = transactional(store, async (_ctx, client) => {
        await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ('order-9', 1)`);
        throw new RangeError('amount over the limit');
      });

      await assert.rejects(executor.run('order-9', pay), RangeError);
      await assert.rejects(executorOn(store).run('order-9', pay), {
        message: 'amount over the limit',
      });

      assert.deepEqual(await payments(), []);
    });

    it("rolls fn's writes back when the outcome cannot be stored, and frees the key", async () => {
      const executor = executorOn(store);
      const unencodable = transactional(store, async (_ctx, client) => {
        await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ('order-10', 1)`);
        return () => 'a function';
      });

      await assert.rejects(executor.run('order-10', unencodable), {
        code: 'IDEMPOTENCY_SERIALIZATION',
      });

      assert.deepEqual(await payments(), []);
      assert.deepEqual(await executor.inspect('order-10'), { state: 'absent' });
    });

    it("listens for errors on a transaction's client from the moment the pool hands it out", async () => {
      // pg-pool hands a freed client to the next waiter while still parsing the chunk that freed
      // it: a FATAL in that same chunk is emitted before a promise's reaction could listen.
      const client = Object.assign(new EventEmitter(), { release: () => {} });
      const handingOut = {
        options: {},
        query: pool.query.bind(pool),
        connect: (callback?: (error: Error | undefined, handed: unknown) => void) => {
          callback?.(undefined, client);
          client.emit('error', new Error('terminating connection due to administrator command'));
          return Promise.resolve(client);
        },
      };
      const onIt = new PostgresStore({ pool: handingOut as never, cleanupIntervalMs: 0 });
      closing.push(() => onIt.close());

      const held = await onIt.connectClient();
      held.release();

      assert.equal(client.listenerCount('error'), 0);
    });

    it("stores nothing when the connection of fn's transaction is lost while fn holds it, and does not crash the process", async () => {
      const executor = executorOn(store, { leaseMs: 500 });
      const pay = transactional(store, async (ctx, client) => {
        await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ($1, 1)`, [ctx.key]);
        const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
        await pool.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
        // The connection's end reaches the client while fn holds it idle: an 'error' event that
        // nobody listened to would end the process (and fail this test).
        await sleep(100);
        return 'paid';
      });

      await assert.rejects(executor.run('order-12', pay), { code: 'IDEMPOTENCY_LEASE_LOST' });
      assert.deepEqual(await payments(), []);
      assert.notEqual((await executor.inspect('order-12')).state, 'completed');

      await sleep(600);
      const retried = await executorOn(store).run(
        'order-12',
        transactional(store, async (ctx, client) => {
          await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ($1, 1)`, [ctx.key]);
          return 'paid';
        }),
      );
      assert.equal(retried, 'paid');
      assert.deepEqual(await payments(), [{ order_id: 'order-12', amount: 1 }]);
    });

    it("does not cache fn's error when its transaction's own connection was lost: the key is freed and the next call runs fn", async () => {
      const executor = executorOn(store);
      let calls = 0;
      const pay = transactional(store, async (ctx, client) => {
        calls++;
        await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ($1, 1)`, [ctx.key]);
        if (calls === 1) {
          const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
          await pool.query('SELECT pg_terminate_backend($1)', [rows[0]?.pid]);
          // fn's next statement fails on the lost connection (57P01 or a connection error).
          await client.query('SELECT 1');
        }
        return 'paid';
      });

      const lost = await executor.run('order-13', pay).then(
        () => undefined,
        (error: unknown) => error,
      );
      const inspected = await executor.inspect('order-13');
      const retried = await executorOn(store).run('order-13', pay);

      assert.equal((lost as { code?: unknown }).code, 'IDEMPOTENCY_STORE_UNAVAILABLE');
      assert.deepEqual(inspected, { state: 'absent' });
      assert.equal(retried, 'paid');
      assert.deepEqual(await payments(), [{ order_id: 'order-13', amount: 1 }]);
    });

    it("answers IDEMPOTENCY_STORE_UNAVAILABLE, not fn's value, when the COMMIT of fn's transaction is in doubt until the lease runs out", async () => {
      // A pool in front of the real one whose COMMIT commits, then loses its reply, after which
      // the database stays unreachable for the store until the test ends: the owner cannot learn
      // whether its writes committed.
      let unreachable = false;
      const lostReply = () => Promise.reject(new Error('Connection terminated unexpectedly'));
      const flaky = new Proxy(pool, {
        get(target, name, receiver) {
          if (name === 'query') {
            return (...args: unknown[]) =>
              unreachable ? lostReply() : (target.query as (...a: unknown[]) => unknown)(...args);
          }
          if (name !== 'connect') return Reflect.get(target, name, receiver);
          return (callback: (error: Error | undefined, client?: pg.PoolClient) => void) =>
            target.connect((error, client) => {
              if (client === undefined) return callback(error);
              const query = client.query.bind(client) as (...a: unknown[]) => Promise<unknown>;
              (client as { query: unknown }).query = async (...args: unknown[]) => {
                if (unreachable) return lostReply();
                const text =
                  typeof args[0] === 'string' ? args[0] : (args[0] as { text?: unknown })?.text;
                if (text !== 'COMMIT') return query(...args);
                await query(...args);
                unreachable = true;
                return lostReply();
              };
              callback(undefined, client);
            });
        },
      });
      const inDoubt = new PostgresStore({
        pool: flaky,
        schema: schemaOf(store),
        cleanupIntervalMs: 0,
        queryTimeoutMs: 200,
      });
      closing.push(() => inDoubt.close());
      const executor = executorOn(inDoubt, { leaseMs: 300 });

      const answer = await executor
        .run(
          'order-14',
          transactional(inDoubt, async (ctx, client) => {
            await client.query(`INSERT INTO "${schemaOf(store)}".payments VALUES ($1, 1)`, [
              ctx.key,
            ]);
            return 'paid';
          }),
        )
        .then(
          (value) => ({ value }),
          (error: unknown) => ({ error }),
        );

      assert.equal(
        'error' in answer ? (answer.error as { code?: unknown }).code : answer.value,
        'IDEMPOTENCY_STORE_UNAVAILABLE',
      );
    });

    it('refuses to run on an executor whose store is another one', async () => {
      const executor = new IdempotentExecutor({ store: new MemoryStore(), namespace: 'unit' });
      closing.push(() => executor.close());

      await assert.rejects(
        executor.run(
          'order-11',
          transactional(store, async () => 1),
        ),
        { code: 'IDEMPOTENCY_INVALID_OPTION', option: 'store' },
      );
    });
  });
});
