// The lease across processes: an owner that dies, an fn that outlives its lease many times over
// (renewed), and an owner whose event loop stalls past its lease (its outcome is refused).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import { executions, sleep, waitForWaiters } from './support.js';
import { ExecutorProcess } from './workers/executor-process.js';

describe('the lease on a running execution', () => {
  let redis: Redis;
  let namespace: string;
  let counterKey: string;
  let executors: IdempotentExecutor[];

  const workers = (count: number, leaseMs: number) =>
    ExecutorProcess.startMany(count, {
      redisUrl: REDIS_URL,
      counterUrl: REDIS_URL,
      namespace,
      leaseMs,
    });
  const executor = () => {
    const created = new IdempotentExecutor({ redis, namespace, leaseMs: 1_000 });
    executors.push(created);
    return created;
  };

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('lease');
    counterKey = `${namespace}:runs`;
    executors = [];
  });
  afterEach(async () => {
    await stopAllWorkers();
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('lets a waiter in another process take over with a larger fencing token when the owner is SIGKILLed mid-fn', async () => {
    // Prepare
    const [owner, successor] = await workers(2, 1_000);
    assert.ok(owner && successor);
    const owning = owner.run({
      key: 'order-1',
      fn: { counterKey, fence: true, sleepMs: 60_000, result: { kind: 'value', value: 'A' } },
    });
    const { token: ownerToken } = await owner.event('fenced', owning);
    const succeeding = successor.run({
      key: 'order-1',
      fn: { counterKey, fence: true, sleepMs: 500, result: { kind: 'value', value: 'B' } },
    });
    await waitForWaiters(redis, namespace, 1);

    // Act
    await owner.kill();
    const { token: successorToken } = await successor.event('fenced', succeeding, 15_000);
    const duringSuccessor = executor().run('order-1', async () => 'the test process ran fn');
    const [successorResult] = await successor.results(succeeding, 1, 15_000);
    const later = await executor().run('order-1', async () => 'ran after completion');

    // Assess
    assert.ok(
      successorToken > ownerToken,
      `successor token ${successorToken} should exceed ${ownerToken}`,
    );
    assert.deepEqual(successorResult, { ...successorResult, ok: true, value: 'B' });
    assert.equal(await duringSuccessor, 'B');
    assert.equal(later, 'B');
    assert.equal(await executions(redis, counterKey), 2);
  });

  it('renews the lease of an fn that runs for five lease lengths (leaseMs 500, fn 2.5 s): a waiter in another process gets its value, fn runs once, ctx.signal never aborts', async () => {
    // Prepare
    const [owner, duplicate] = await workers(2, 500);
    assert.ok(owner && duplicate);
    const receipt = { orderId: 'o-2', status: 'paid' };
    const owning = owner.run({
      key: 'order-2',
      fn: {
        counterKey,
        watchSignal: true,
        gate: 'finish', // opened by the test after five lease lengths
        result: { kind: 'value', value: receipt },
      },
    });
    await owner.event('started', owning);
    const duplicating = duplicate.run({
      key: 'order-2',
      fn: { counterKey, result: { kind: 'value', value: 'the duplicate ran fn' } },
    });

    // Act
    await sleep(2_500); // five lease lengths: without renewals the lease would be long gone
    const midway = await executor().inspect('order-2');
    owner.open('finish');
    const [ownerResult] = await owner.results(owning);
    const [duplicateResult] = await duplicate.results(duplicating);

    // Assess
    assert.equal(midway.state, 'running');
    assert.deepEqual(ownerResult, { ...ownerResult, ok: true, value: receipt });
    assert.deepEqual(duplicateResult, { ...duplicateResult, ok: true, value: receipt });
    assert.equal(await executions(redis, counterKey), 1);
    assert.deepEqual(owner.eventsOf('aborted', owning), []);
    assert.deepEqual(
      owner.eventsOf('finished', owning).map((line) => line.signalAborted),
      [false],
    );
  });

  it('aborts ctx.signal and refuses the outcome of an owner whose event loop was blocked past its lease, keeping the successor outcome', async () => {
    // Prepare
    const [owner, successor] = await workers(2, 1_000);
    assert.ok(owner && successor);

    // Act: the owner blocks for three leases; the successor takes the key over meanwhile.
    const owning = owner.run({
      key: 'order-3',
      fn: {
        counterKey,
        watchSignal: true,
        blockMs: 3_000,
        awaitAbortMs: 5_000,
        result: { kind: 'value', value: 'A' },
      },
    });
    await owner.event('started', owning);
    const succeeding = successor.run({
      key: 'order-3',
      fn: { counterKey, result: { kind: 'value', value: 'B' } },
    });
    const [successorResult] = await successor.results(succeeding, 1, 15_000);
    const [ownerResult] = await owner.results(owning, 1, 15_000);
    const replayed = await executor().run('order-3', async () => 'ran after completion');

    // Assess
    assert.deepEqual(successorResult, { ...successorResult, ok: true, value: 'B' });
    assert.equal(ownerResult?.ok, false);
    assert.equal(ownerResult.ok ? undefined : ownerResult.error.code, 'IDEMPOTENCY_LEASE_LOST');
    assert.deepEqual(
      owner.eventsOf('aborted', owning).map((line) => line.code),
      ['IDEMPOTENCY_LEASE_LOST'],
    );
    assert.deepEqual(
      owner.eventsOf('finished', owning).map((line) => line.signalAborted),
      [true],
    );
    assert.equal(replayed, 'B');
    assert.equal(await executions(redis, counterKey), 2);
  });
});
