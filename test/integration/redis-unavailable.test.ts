// Redis stops: calls fail closed (IDEMPOTENCY_STORE_UNAVAILABLE, fn not run) within a bound, even
// with a default-configured ioredis client; once Redis is back on its port, calls work again.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { OwnRedisServer, waitUntil } from '../helpers/redis.js';
import { gate, rejectionOf, sleep, subscribersIn } from './support.js';

/** A correctness bound (the call must settle), far above storeTimeoutMs: never a speed claim. */
const SETTLES_WITHIN_MS = 15_000;

/** Subscriptions on the channels of the `unavailable` namespace of `server`. */
async function subscribersOf(server: OwnRedisServer): Promise<number> {
  const admin = new Redis(server.url);
  try {
    return await subscribersIn(admin, 'unavailable');
  } finally {
    admin.disconnect();
  }
}

describe('when Redis is unreachable', () => {
  let server: OwnRedisServer;
  let clients: Redis[];
  let executors: IdempotentExecutor[];

  /** A default-configured client, as users hand it over (plus a listener so errors are not logged). */
  const defaultClient = () => {
    const client = new Redis(server.url);
    client.on('error', () => {});
    clients.push(client);
    return client;
  };
  const executor = (redis: Redis) => {
    const created = new IdempotentExecutor({
      redis,
      namespace: 'unavailable',
      storeTimeoutMs: 1_000,
      leaseMs: 1_000,
    });
    executors.push(created);
    return created;
  };

  beforeEach(async () => {
    server = await OwnRedisServer.start();
    clients = [];
    executors = [];
  });
  afterEach(async () => {
    await Promise.all(executors.map((created) => created.close()));
    for (const client of clients) client.disconnect();
    await server.stop();
  });

  it('rejects with IDEMPOTENCY_STORE_UNAVAILABLE within a bounded time after Redis stops, without running fn', async () => {
    // Prepare
    const idempotent = executor(defaultClient());
    assert.equal(await idempotent.run('before', async () => 'stored'), 'stored');
    await server.stop();
    let ran = false;

    // Act
    const started = Date.now();
    const error = await rejectionOf(
      idempotent.run('during', async () => {
        ran = true;
        return 'should not run';
      }),
    );
    const settledAfterMs = Date.now() - started;

    // Assess
    assert.ok(isIdempotencyError(error), `expected an IdempotencyError, got ${String(error)}`);
    assert.equal(error.code, 'IDEMPOTENCY_STORE_UNAVAILABLE');
    assert.equal(ran, false);
    assert.ok(settledAfterMs < SETTLES_WITHIN_MS, `settled after ${settledAfterMs} ms`);
  });

  it('rejects with IDEMPOTENCY_STORE_UNAVAILABLE within a bounded time for an executor made while Redis is down', async () => {
    // Prepare
    await server.stop();
    const idempotent = executor(defaultClient());
    let ran = false;

    // Act
    const started = Date.now();
    const error = await rejectionOf(
      idempotent.run('never-connected', async () => {
        ran = true;
        return 'should not run';
      }),
    );
    const settledAfterMs = Date.now() - started;

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_STORE_UNAVAILABLE');
    assert.equal(ran, false);
    assert.ok(settledAfterMs < SETTLES_WITHIN_MS, `settled after ${settledAfterMs} ms`);
  });

  it('settles a caller that waits on another execution with IDEMPOTENCY_STORE_UNAVAILABLE when Redis stops', async () => {
    // Prepare
    const owner = executor(defaultClient());
    const waiter = executor(defaultClient());
    const release = gate();
    const started = gate();
    const owning = owner.run('shared', async () => {
      started.open();
      await release.promise;
      return 'owner value';
    });
    await started.promise;
    let waiterRan = false;
    const waiting = rejectionOf(
      waiter.run('shared', async () => {
        waiterRan = true;
        return 'waiter value';
      }),
    );
    await waitUntil(async () => (await subscribersOf(server)) >= 1, 10_000);

    // Act
    const stopped = Date.now();
    await server.stop();
    const error = await waiting;
    const settledAfterMs = Date.now() - stopped;
    release.open();
    await owning.catch(() => undefined);

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_STORE_UNAVAILABLE');
    assert.equal(waiterRan, false);
    assert.ok(settledAfterMs < SETTLES_WITHIN_MS, `settled after ${settledAfterMs} ms`);
  });

  it('runs again once Redis restarts on the same port', async () => {
    // Prepare
    const idempotent = executor(defaultClient());
    await idempotent.run('before', async () => 'stored');
    await server.stop();
    await rejectionOf(idempotent.run('during', async () => 'should not run'));
    await server.startProcess();
    let runs = 0;
    const fn = async () => {
      runs++;
      return 'after restart';
    };

    // Act: the client reconnects with its own backoff; calls before that fail closed.
    const failures: unknown[] = [];
    let value: unknown;
    const deadline = Date.now() + 20_000;
    while (value === undefined && Date.now() < deadline) {
      try {
        value = await idempotent.run('after', fn);
      } catch (error) {
        failures.push((error as { code?: unknown }).code);
        await sleep(200);
      }
    }
    const replayed = await idempotent.run('after', async () => 'ran twice');

    // Assess
    assert.equal(value, 'after restart');
    assert.equal(replayed, 'after restart');
    assert.equal(runs, 1);
    for (const code of failures) assert.equal(code, 'IDEMPOTENCY_STORE_UNAVAILABLE');
  });
});
