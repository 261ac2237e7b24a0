// Every caller keeps its own wait bound, wherever fn runs: a duplicate that joins an execution
// running in its own process gives up after its waitTimeoutMs, like one in another process.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../helpers/redis.js';
import { gate, rejectionOf, settledWithin } from './support.js';

describe('the wait bound of a same-process duplicate', () => {
  let redis: Redis;
  let namespace: string;
  let executor: IdempotentExecutor;

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('wait-bound');
    executor = new IdempotentExecutor({ redis, namespace });
  });
  afterEach(async () => {
    await executor.close();
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('fails a duplicate with IDEMPOTENCY_WAIT_TIMEOUT at its own waitTimeoutMs while the owner runs in the same process, and the owner still finishes', async () => {
    // Prepare
    const started = gate();
    const release = gate();
    let executions = 0;
    const owner = executor.run('order-1', async () => {
      executions++;
      started.open();
      await release.promise;
      return 'receipt';
    });
    await started.promise;

    // Act
    const joinedAt = Date.now();
    // Bounded: without its own bound the duplicate would wait for the owner, released below.
    const error = await settledWithin(
      rejectionOf(executor.run('order-1', async () => 'ran twice', { waitTimeoutMs: 150 })),
      2_000,
      'the duplicate',
    ).finally(release.open);
    const waitedMs = Date.now() - joinedAt;
    const value = await owner;

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_WAIT_TIMEOUT');
    assert.ok(waitedMs >= 140, `gave up after ${waitedMs} ms, before its bound`);
    assert.equal(value, 'receipt');
    assert.equal(executions, 1);
  });

  it('gives a same-process duplicate whose bound is long enough the owner’s value', async () => {
    // Prepare
    const started = gate();
    const release = gate();
    const owner = executor.run('order-2', async () => {
      started.open();
      await release.promise;
      return 'receipt';
    });
    await started.promise;

    // Act
    const duplicate = executor.run('order-2', async () => 'ran twice', { waitTimeoutMs: 10_000 });
    release.open();

    // Assess
    assert.deepEqual(await Promise.all([owner, duplicate]), ['receipt', 'receipt']);
  });

  it('fails a same-process duplicate with wait: false at once with IDEMPOTENCY_IN_PROGRESS', async () => {
    // Prepare
    const started = gate();
    const release = gate();
    const owner = executor.run('order-3', async () => {
      started.open();
      await release.promise;
      return 'receipt';
    });
    await started.promise;

    // Act
    const error = await rejectionOf(
      executor.run('order-3', async () => 'ran twice', { wait: false }),
    );
    release.open();
    await owner;

    // Assess
    assert.equal((error as { code?: unknown }).code, 'IDEMPOTENCY_IN_PROGRESS');
  });
});
