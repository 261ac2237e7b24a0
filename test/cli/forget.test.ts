// `idempotent-executor forget <key>`, run as a real process against the shared Redis.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { gate, parseJson, runCli } from './support.js';

describe('forget', () => {
  const namespace = uniqueNamespace('cli-forget');
  let redis: Redis;
  let executor: IdempotentExecutor;

  before(() => {
    redis = connect();
    executor = new IdempotentExecutor({ redis, namespace });
  });

  after(async () => {
    await executor.close();
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  const cli = (...args: string[]) =>
    runCli([...args, '--namespace', namespace, '--redis', REDIS_URL]);

  it('deletes a completed record, so the next run executes fn again', async () => {
    // Prepare
    await executor.run('order-1', () => 'first');

    // Act
    const result = await cli('forget', 'order-1', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.deepEqual(parseJson(result), { key: 'order-1', namespace, result: 'deleted' });
    assert.equal(await executor.run('order-1', () => 'second'), 'second');
  });

  it('says there was nothing to forget for a key with no record', async () => {
    // Act
    const result = await cli('forget', 'never-run');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /Nothing to forget: "never-run" has no record/);
  });

  it('refuses a running execution with exit code 3 and leaves its lease alone', async () => {
    // Prepare
    const held = gate();
    const running = executor.run('order-2', () => held.opened.then(() => 'done'));
    try {
      await waitForState(executor, 'order-2', 'running');

      // Act
      const result = await cli('forget', 'order-2');

      // Assess
      assert.equal(result.code, 3);
      assert.match(result.stderr, /Refused: an execution of "order-2" is running/);
      assert.match(result.stderr, /--force/);
      assert.equal((await executor.inspect('order-2')).state, 'running');
    } finally {
      held.open();
    }
    assert.equal(await running, 'done');
  });

  it('refuses --force without --yes when there is no terminal to confirm on', async () => {
    // Prepare
    const held = gate();
    const running = executor.run('order-3', () => held.opened);
    try {
      await waitForState(executor, 'order-3', 'running');

      // Act
      const result = await cli('forget', 'order-3', '--force', '--json');

      // Assess
      assert.equal(result.code, 3);
      const error = JSON.parse(result.stderr) as { error: { code: string; message: string } };
      assert.equal(error.error.code, 'NOT_CONFIRMED');
      assert.equal((await executor.inspect('order-3')).state, 'running');
    } finally {
      held.open();
      await running;
    }
  });

  it('with --force --yes releases a running lease: a waiter runs fn at once, the owner loses its lease', async () => {
    // Prepare
    const held = gate();
    const owner = executor.run('order-4', () => held.opened.then(() => 'owner'), {
      leaseMs: 30_000,
    });
    const ownerSettled = owner.then(
      () => 'stored',
      (error: { code?: string }) => error.code,
    );
    await waitForState(executor, 'order-4', 'running');
    const other = new IdempotentExecutor({ redis, namespace });
    try {
      const waiter = other.run('order-4', () => 'waiter', { waitTimeoutMs: 20_000 });
      await new Promise((resolve) => setTimeout(resolve, 100));

      // Act
      const started = Date.now();
      const result = await cli('forget', 'order-4', '--force', '--yes', '--json');

      // Assess
      assert.equal(result.code, 0, result.stderr);
      assert.equal(parseJson(result).result, 'lease-released');
      // The waiter heard the release notice and ran fn itself, long before the 30 s lease ran out.
      assert.equal(await waiter, 'waiter');
      assert.ok(Date.now() - started < 15_000);
      held.open();
      assert.equal(await ownerSettled, 'IDEMPOTENCY_LEASE_LOST');
      assert.equal(await other.run('order-4', () => 'again'), 'waiter');
    } finally {
      held.open();
      await other.close();
    }
  });
});

async function waitForState(
  executor: IdempotentExecutor,
  key: string,
  state: string,
): Promise<void> {
  for (let i = 0; i < 200; i++) {
    if ((await executor.inspect(key)).state === state) return;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`${key} never became ${state}`);
}
