// A user's ioredis client may carry a `keyPrefix`. ioredis puts it before every key of a command,
// including the channel a completion script publishes to, but not before the channels of
// SUBSCRIBE: waiters must listen on the prefixed channel, or they would only learn of the outcome
// when the lease expires.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import {
  connect,
  deleteNamespace,
  REDIS_URL,
  uniqueNamespace,
  waitUntil,
} from '../helpers/redis.js';
import { gate, keysUnder, waitForWaiters } from './support.js';

describe('with a client whose keyPrefix is set', () => {
  const prefix = `${uniqueNamespace('prefix')}:`;
  const namespace = 'orders';
  let admin: Redis;
  const clients: Redis[] = [];
  const executors: IdempotentExecutor[] = [];

  /** An executor on its own prefixed client: the lease outlives the wait bound by far. */
  const executor = () => {
    const client = new Redis(REDIS_URL, { keyPrefix: prefix });
    clients.push(client);
    const created = new IdempotentExecutor({
      redis: client,
      namespace,
      leaseMs: 60_000,
      waitTimeoutMs: 5_000,
    });
    executors.push(created);
    return created;
  };

  before(() => {
    admin = connect();
  });
  after(async () => {
    await Promise.all(executors.map((created) => created.close()));
    for (const client of clients) client.disconnect();
    await deleteNamespace(admin, prefix.slice(0, -1));
    admin.disconnect();
  });

  it('keeps its records under the prefix and wakes a waiter in another executor when the winner completes', async () => {
    // Prepare: the winner holds the key until the waiter is waiting.
    const winner = executor();
    const waiter = executor();
    const release = gate();
    const running = winner.run('order-1', async () => {
      await release.promise;
      return { charged: 1200 };
    });
    const recordKey = `${prefix}${namespace}:{order-1}`;
    await waitUntil(async () => (await admin.exists(recordKey)) === 1, 10_000);
    const waited = waiter.run('order-1', async () => ({ charged: -1 }));
    // The waiter listens on the prefixed channel, the one the completion publishes to.
    await waitForWaiters(admin, `${prefix}${namespace}`, 1);

    // Act
    release.open();

    // Assert: the waiter gets the value well before its 5 s bound (the lease is 60 s); without
    // the prefixed subscription it would end with IDEMPOTENCY_WAIT_TIMEOUT.
    assert.deepEqual(await running, { charged: 1200 });
    assert.deepEqual(await waited, { charged: 1200 });
    assert.deepEqual(await keysUnder(admin, prefix.slice(0, -1)), [recordKey]);
  });
});
