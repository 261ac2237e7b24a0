// `idempotent-executor inspect <key>`, run as a real process against the shared Redis.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { gate, parseJson, runCli } from './support.js';

class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
  readonly declineCode = 'insufficient_funds';
}

describe('inspect', () => {
  const namespace = uniqueNamespace('cli-inspect');
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

  it('shows a completed record: state, timestamps, expiry, fingerprint and the decoded value', async () => {
    // Prepare
    const before = Date.now();
    await executor.run('order-1', () => ({ amount: 1200, tags: new Set(['eu']), big: 7n }), {
      fingerprint: { amount: 1200 },
      ttlMs: 60_000,
    });

    // Act
    const result = await cli('inspect', 'order-1', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    const shown = parseJson(result);
    assert.equal(shown.key, 'order-1');
    assert.equal(shown.redisKey, `${namespace}:{order-1}`);
    assert.equal(shown.state, 'completed');
    assert.equal(shown.ok, true);
    assert.ok(Date.parse(shown.startedAt as string) >= before - 5);
    assert.ok(Date.parse(shown.completedAt as string) >= Date.parse(shown.startedAt as string));
    assert.ok((shown.expiresInMs as number) > 50_000 && (shown.expiresInMs as number) <= 60_000);
    assert.match(shown.fingerprint as string, /^[0-9a-f]{32}$/);
    assert.deepEqual(shown.value, { amount: 1200, tags: { $set: ['eu'] }, big: { $bigint: '7' } });
  });

  it('gives the same fingerprint for the same input, whatever the key order', async () => {
    // Prepare
    await executor.run('fp-a', () => 1, { fingerprint: { a: 1, b: 2 } });
    await executor.run('fp-b', () => 1, { fingerprint: { b: 2, a: 1 } });

    // Act
    const [a, b] = await Promise.all([
      cli('inspect', 'fp-a', '--json'),
      cli('inspect', 'fp-b', '--json'),
    ]);

    // Assess
    assert.equal(parseJson(a).fingerprint, parseJson(b).fingerprint);
  });

  it('shows a cached error with its name, message, code and properties', async () => {
    // Prepare
    await executor
      .run('order-2', () => {
        throw new CardDeclinedError('Your card was declined');
      })
      .catch(() => undefined);

    // Act
    const result = await cli('inspect', 'order-2', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    const shown = parseJson(result);
    assert.equal(shown.state, 'completed');
    assert.equal(shown.ok, false);
    assert.deepEqual(shown.error, {
      $error: {
        name: 'CardDeclinedError',
        message: 'Your card was declined',
        code: 'card_declined',
        declineCode: 'insufficient_funds',
      },
    });
  });

  it('shows a running execution with the time left on its lease', async () => {
    // Prepare
    const held = gate();
    const running = executor.run('order-3', () => held.opened, { leaseMs: 20_000 });
    try {
      await waitForState(executor, 'order-3', 'running');

      // Act
      const result = await cli('inspect', 'order-3', '--json');

      // Assess
      assert.equal(result.code, 0, result.stderr);
      const shown = parseJson(result);
      assert.equal(shown.state, 'running');
      assert.ok(
        (shown.leaseExpiresInMs as number) > 0 && (shown.leaseExpiresInMs as number) <= 20_000,
      );
    } finally {
      held.open();
      await running;
    }
  });

  it('says absent for a key with no record', async () => {
    // Act
    const result = await cli('inspect', 'never-run', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.equal(parseJson(result).state, 'absent');
  });

  it('finds a key with braces and percent signs under the Redis key the executor escaped it to', async () => {
    // Prepare
    await executor.run('a{b}%c', () => 'braced');

    // Act
    const result = await cli('inspect', 'a{b}%c', '--json');

    // Assess
    const shown = parseJson(result);
    assert.equal(shown.redisKey, `${namespace}:{a%7Bb%7D%25c}`);
    assert.equal(shown.value, 'braced');
  });

  it('prints a readable table without --json', async () => {
    // Prepare
    await executor.run('order-4', () => ({ receipt: 'r-1' }));

    // Act
    const result = await cli('inspect', 'order-4');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^state +completed \(value\)$/m);
    assert.match(result.stdout, /^value +\{ receipt: 'r-1' \}$/m);
    assert.match(result.stdout, /^expires +in 23h 59m/m);
  });

  it('reports bytes that do not decode as unreadable, with exit code 1', async () => {
    // Prepare
    await redis.set(`${namespace}:{garbage}`, 'not a record');

    // Act
    const result = await cli('inspect', 'garbage', '--json');

    // Assess
    assert.equal(result.code, 1);
    const shown = parseJson(result);
    assert.equal(shown.state, 'unreadable');
    assert.match(shown.reason as string, /cannot be decoded/);
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
