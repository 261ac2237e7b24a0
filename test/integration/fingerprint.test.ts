// A key reused for other input is refused (IDEMPOTENCY_KEY_REUSED) whether the first execution has
// finished or still runs in another process; the same input in another property order replays.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import { executions, gate, rejectionOf, waitForWaiters } from './support.js';
import { ExecutorProcess } from './workers/executor-process.js';

const order = { amount: 1_200, currency: 'EUR', lines: [{ sku: 'a', qty: 2, price: 600 }] };
const sameOrderReordered = {
  lines: [{ price: 600, qty: 2, sku: 'a' }],
  currency: 'EUR',
  amount: 1_200,
};
const otherOrder = { ...order, amount: 1_300 };

describe('fingerprints', () => {
  let redis: Redis;
  let namespace: string;
  let counterKey: string;
  let executors: IdempotentExecutor[];

  const executor = () => {
    const created = new IdempotentExecutor({ redis, namespace, leaseMs: 1_000 });
    executors.push(created);
    return created;
  };
  const worker = async () => {
    const [started] = await ExecutorProcess.startMany(1, {
      redisUrl: REDIS_URL,
      counterUrl: REDIS_URL,
      namespace,
      leaseMs: 1_000,
    });
    assert.ok(started);
    return started;
  };
  const counted = (value: unknown) => async () => {
    await redis.incr(counterKey);
    return value;
  };

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('fingerprint');
    counterKey = `${namespace}:runs`;
    executors = [];
  });
  afterEach(async () => {
    await stopAllWorkers();
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('rejects a later caller with another fingerprint with IDEMPOTENCY_KEY_REUSED without running fn', async () => {
    // Prepare
    await executor().run('order-1', counted('charged'), { fingerprint: order });

    // Act
    const error = await rejectionOf(
      executor().run('order-1', counted('charged again'), { fingerprint: otherOrder }),
    );

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('rejects a concurrent caller in another process with another fingerprint with IDEMPOTENCY_KEY_REUSED while the first runs', async () => {
    // Prepare
    const other = await worker();
    const release = gate();
    const started = gate();
    const first = executor().run(
      'order-2',
      async () => {
        await redis.incr(counterKey);
        started.open();
        await release.promise;
        return 'charged';
      },
      { fingerprint: order },
    );
    await started.promise;

    // Act
    const duplicate = other.run({
      key: 'order-2',
      fingerprint: otherOrder,
      fn: { counterKey, result: { kind: 'value', value: 'charged again' } },
    });
    await waitForWaiters(redis, namespace, 1);
    release.open();
    const [refused] = await other.results(duplicate);

    // Assess
    assert.equal(await first, 'charged');
    assert.equal(refused?.ok, false);
    assert.equal(refused.ok ? undefined : refused.error.code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('rejects a concurrent caller in the same process with another fingerprint with IDEMPOTENCY_KEY_REUSED', async () => {
    // Prepare
    const idempotent = executor();
    const release = gate();
    const first = idempotent.run(
      'order-3',
      async () => {
        await release.promise;
        return 'charged';
      },
      { fingerprint: order },
    );

    // Act
    const error = await rejectionOf(
      idempotent.run('order-3', counted('charged again'), { fingerprint: otherOrder }),
    );
    release.open();

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_KEY_REUSED');
    assert.equal(await first, 'charged');
    assert.equal(await executions(redis, counterKey), 0);
  });

  it('replays to a caller in another process whose fingerprint has the same properties in another order', async () => {
    // Prepare
    const other = await worker();
    await executor().run('order-4', counted({ receipt: 'r-4' }), { fingerprint: order });

    // Act
    const later = other.run({
      key: 'order-4',
      fingerprint: sameOrderReordered,
      fn: { counterKey, result: { kind: 'value', value: 'charged again' } },
    });
    const [replayed] = await other.results(later);

    // Assess
    assert.deepEqual(replayed, { ...replayed, ok: true, value: { receipt: 'r-4' } });
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('hands the value to a concurrent caller in another process whose fingerprint has the same properties in another order', async () => {
    // Prepare
    const other = await worker();
    const release = gate();
    const started = gate();
    const first = executor().run(
      'order-5',
      async () => {
        await redis.incr(counterKey);
        started.open();
        await release.promise;
        return { receipt: 'r-5' };
      },
      { fingerprint: order },
    );
    await started.promise;

    // Act
    const duplicate = other.run({
      key: 'order-5',
      fingerprint: sameOrderReordered,
      fn: { counterKey, result: { kind: 'value', value: 'charged again' } },
    });
    await waitForWaiters(redis, namespace, 1);
    release.open();
    const [waited] = await other.results(duplicate);

    // Assess
    assert.deepEqual(await first, { receipt: 'r-5' });
    assert.deepEqual(waited, { ...waited, ok: true, value: { receipt: 'r-5' } });
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('replays to a caller whose fingerprint holds a Map with the same object values in another property order', async () => {
    // Prepare
    const customers = (first: Record<string, unknown>) => ({
      orderId: 'o-7',
      customers: new Map([['c-1', first]]),
    });
    await executor().run('order-7', counted('charged'), {
      fingerprint: customers({ name: 'Ada', tier: 'gold' }),
    });

    // Act
    const replayed = await executor()
      .run('order-7', counted('charged again'), {
        fingerprint: customers({ tier: 'gold', name: 'Ada' }),
      })
      .catch((error: unknown) => error);

    // Assess
    assert.equal(replayed, 'charged');
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('replays to a later caller that gives no fingerprint (it is not checked)', async () => {
    // Prepare
    await executor().run('order-6', counted('charged'), { fingerprint: order });

    // Act
    const replayed = await executor().run('order-6', counted('charged again'));

    // Assess
    assert.equal(replayed, 'charged');
    assert.equal(await executions(redis, counterKey), 1);
  });
});
