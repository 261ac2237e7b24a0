// Duplicates of one key from several OS processes sharing a Redis: fn runs once, and every
// caller in every process gets the same value or the same (rebuilt) error.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import { describeError, type TransportedError } from '../helpers/worker/protocol.js';
import { executions, gate, rejectionOf, waitForWaiters } from './support.js';
import { CardDeclinedError, declinedCard, GatewayTimeoutError } from './workers/errors.js';
import { ExecutorProcess, type RunResult } from './workers/executor-process.js';

/** [constructor, message, code] of an error and of each error in its cause chain. */
function chainOf(error: TransportedError): [unknown, unknown, unknown][] {
  const chain: [unknown, unknown, unknown][] = [];
  let link: TransportedError['cause'] = error;
  while (link !== null && 'classes' in link) {
    chain.push([link.classes[0], link.message, link.code]);
    link = link.cause;
  }
  return chain;
}

describe('duplicates across OS processes', () => {
  let redis: Redis;
  let namespace: string;
  let executors: IdempotentExecutor[];

  const workerConfig = () => ({ redisUrl: REDIS_URL, counterUrl: REDIS_URL, namespace });
  const executor = () => {
    const created = new IdempotentExecutor({
      redis,
      namespace,
      leaseMs: 1_500,
      errorClasses: [CardDeclinedError, GatewayTimeoutError],
    });
    executors.push(created);
    return created;
  };
  const pids = (results: readonly RunResult[]) => new Set(results.map((result) => result.pid));

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('xproc');
    executors = [];
  });
  afterEach(async () => {
    await stopAllWorkers();
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('runs fn once for 15 concurrent calls from 3 processes and gives every caller its value', async () => {
    // Prepare
    const workers = await ExecutorProcess.startMany(3, workerConfig());
    const counterKey = `${namespace}:runs`;
    const receipt = {
      orderId: 'o-1',
      amount: 1_200,
      currency: 'EUR',
      lines: [{ sku: 'a', qty: 2 }],
    };

    // Act
    const ids = workers.map((worker) =>
      worker.run({
        key: 'order-1',
        calls: 5,
        fn: { counterKey, sleepMs: 300, result: { kind: 'value', value: receipt } },
      }),
    );
    const results = (
      await Promise.all(workers.map((worker, i) => worker.results(ids[i] as string, 5)))
    ).flat();

    // Assess
    assert.equal(results.length, 15);
    assert.equal(pids(results).size, 3);
    assert.equal(await executions(redis, counterKey), 1);
    for (const result of results) assert.deepEqual(result, { ...result, ok: true, value: receipt });
  });

  it('replays a cached error to 15 callers in 3 processes as the registered class with its code, properties and cause chain', async () => {
    // Prepare
    const workers = await ExecutorProcess.startMany(3, workerConfig());
    const counterKey = `${namespace}:runs`;
    const thrown = describeError(declinedCard());

    // Act
    const ids = workers.map((worker) =>
      worker.run({
        key: 'order-2',
        calls: 5,
        fn: { counterKey, sleepMs: 300, result: { kind: 'declined-card' } },
      }),
    );
    const results = (
      await Promise.all(workers.map((worker, i) => worker.results(ids[i] as string, 5)))
    ).flat();

    // Assess
    assert.equal(await executions(redis, counterKey), 1);
    assert.equal(pids(results).size, 3);
    assert.deepEqual(chainOf(thrown), [
      ['CardDeclinedError', 'Your card was declined', 'card_declined'],
      ['Error', 'issuer answered 51', null],
      ['TypeError', 'socket reset by issuer', null],
    ]);
    for (const result of results) {
      assert.equal(result.ok, false);
      // Same class, name, message, code, own enumerable properties and cause chain as thrown.
      assert.deepEqual(result.ok ? undefined : result.error, thrown);
    }
  });

  it('hands the winner value to 20 waiters spread over 2 processes, each on its own connection', async () => {
    // Prepare
    const [first, second] = await ExecutorProcess.startMany(2, {
      ...workerConfig(),
      executors: 10,
    });
    assert.ok(first && second);
    const counterKey = `${namespace}:runs`;
    const release = gate();
    const started = gate();
    const winner = executor().run('order-3', async () => {
      await redis.incr(counterKey);
      started.open();
      await release.promise;
      return { orderId: 'o-3', status: 'paid' };
    });
    await started.promise;

    // Act
    const waiterFn = { counterKey, result: { kind: 'value', value: 'a waiter ran fn' } } as const;
    const ids = [first, second].map((worker) =>
      worker.run({ key: 'order-3', calls: 10, fn: waiterFn }),
    );
    await waitForWaiters(redis, namespace, 20);
    release.open();
    const value = await winner;
    const results = [
      ...((await first?.results(ids[0] as string, 10)) ?? []),
      ...((await second?.results(ids[1] as string, 10)) ?? []),
    ];

    // Assess
    assert.deepEqual(value, { orderId: 'o-3', status: 'paid' });
    assert.equal(results.length, 20);
    for (const result of results) assert.deepEqual(result, { ...result, ok: true, value });
    assert.equal(await executions(redis, counterKey), 1);
  });

  it('gives an error shouldCacheError rejects to the waiters in another process, frees the key, and runs fn again on the next call', async () => {
    // Prepare
    const [worker] = await ExecutorProcess.startMany(1, workerConfig());
    assert.ok(worker);
    const owner = executor();
    const counterKey = `${namespace}:runs`;
    const release = gate();
    const started = gate();
    const thrown = new GatewayTimeoutError('the gateway did not answer');
    const running = owner.run(
      'order-4',
      async () => {
        await redis.incr(counterKey);
        started.open();
        await release.promise;
        throw thrown;
      },
      { shouldCacheError: () => false },
    );
    await started.promise;
    const waiting = worker.run({
      key: 'order-4',
      calls: 3,
      fn: { counterKey, result: { kind: 'value', value: 'a waiter ran fn' } },
    });
    await waitForWaiters(redis, namespace, 1);

    // Act
    release.open();
    const ownerError = await rejectionOf(running);
    const waiterResults = await worker.results(waiting, 3);
    const afterwards = await owner.inspect('order-4');
    const nextCall = worker.run({
      key: 'order-4',
      fn: { counterKey, result: { kind: 'value', value: 'second attempt' } },
    });
    const [next] = await worker.results(nextCall);

    // Assess
    assert.equal(ownerError, thrown);
    for (const result of waiterResults) {
      assert.equal(result.ok, false);
      assert.deepEqual(result.ok ? undefined : result.error, describeError(thrown));
    }
    assert.deepEqual(afterwards, { state: 'absent' });
    assert.deepEqual(next, { ...next, ok: true, value: 'second attempt' });
    assert.equal(await executions(redis, counterKey), 2);
  });
});
