// `idempotent-executor list` and `stats`, run as real processes against the shared Redis.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { gate, parseJson, runCli } from './support.js';

interface ListedKey {
  key: string;
  state: string;
  ok?: boolean;
  leaseExpiresInMs?: number;
}

describe('list and stats', () => {
  const namespace = uniqueNamespace('cli-list');
  let redis: Redis;
  let executor: IdempotentExecutor;
  const held = gate();
  let running: Promise<unknown>;

  before(async () => {
    redis = connect();
    executor = new IdempotentExecutor({ redis, namespace });
    // Prepare: three values, one cached error, one running execution that took a fencing token.
    for (const key of ['order-1', 'order-2', 'refund-{1}']) await executor.run(key, () => key);
    await executor
      .run('order-failed', () => {
        throw new Error('declined');
      })
      .catch(() => undefined);
    let tokenTaken = () => {};
    const taken = new Promise<void>((resolve) => {
      tokenTaken = resolve;
    });
    running = executor.run(
      'order-running',
      async (ctx) => {
        await ctx.fencingToken();
        tokenTaken();
        await held.opened;
      },
      { leaseMs: 20_000 },
    );
    await taken;
  });

  after(async () => {
    held.open();
    await running;
    await executor.close();
    await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  const cli = (...args: string[]) =>
    runCli([...args, '--namespace', namespace, '--redis', REDIS_URL]);
  const listed = (result: { stdout: string }) =>
    (JSON.parse(result.stdout) as { keys: ListedKey[] }).keys;

  it('lists every record with its state and the key as given, skipping fencing counters', async () => {
    // Act
    const result = await cli('list', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.equal(parseJson(result).complete, true);
    const keys = listed(result);
    assert.deepEqual(
      keys.map(({ key, state, ok }) => [key, state, ok]),
      [
        ['order-1', 'completed', true],
        ['order-2', 'completed', true],
        ['order-failed', 'completed', false],
        ['order-running', 'running', undefined],
        ['refund-{1}', 'completed', true],
      ],
    );
    assert.ok((await redis.exists(`${namespace}:{order-running}:fence`)) === 1);
  });

  it('lists only running keys with --state running', async () => {
    // Act
    const result = await cli('list', '--state', 'running', '--json');

    // Assess
    const keys = listed(result);
    assert.deepEqual(
      keys.map(({ key }) => key),
      ['order-running'],
    );
    assert.ok((keys[0]?.leaseExpiresInMs ?? 0) > 0);
  });

  it('lists only keys matching --match, a glob over the keys as given', async () => {
    // Act
    const orders = await cli('list', '--match', 'order-?', '--json');
    const refunds = await cli('list', '--match', 'refund-{*', '--json');

    // Assess
    assert.deepEqual(
      listed(orders).map(({ key }) => key),
      ['order-1', 'order-2'],
    );
    assert.deepEqual(
      listed(refunds).map(({ key }) => key),
      ['refund-{1}'],
    );
  });

  it('stops at --limit and says the list is incomplete', async () => {
    // Act
    const result = await cli('list', '--limit', '2', '--json');
    const text = await cli('list', '--limit', '2');

    // Assess
    assert.equal(listed(result).length, 2);
    assert.equal(parseJson(result).complete, false);
    assert.match(text.stdout, /Stopped at --limit 2: there are more\./);
  });

  it('prints a table of keys without --json', async () => {
    // Act
    const result = await cli('list', '--state', 'completed');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^KEY +STATE +COMPLETED +EXPIRES IN$/m);
    assert.match(result.stdout, /^order-failed +completed \(error\) /m);
    assert.match(result.stdout, /^4 completed keys$/m);
  });

  it('stats counts keys by state, sums their memory and names the next lease to expire', async () => {
    // Act
    const result = await cli('stats', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    const stats = parseJson(result) as {
      complete: boolean;
      keys: Record<string, number>;
      bytes: number;
      recordBytes: number;
      nextLeaseToExpire: { key: string; leaseExpiresInMs: number };
      oldestRunning: { key: string; claimedAt: string };
    };
    assert.equal(stats.complete, true);
    assert.deepEqual(stats.keys, {
      running: 1,
      completed: 4,
      cachedErrors: 1,
      unreadable: 0,
      other: 1,
    });
    let expectedBytes = 0;
    const keys: string[] = [];
    let cursor = '0';
    do {
      const [next, batch] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1_000);
      cursor = next;
      keys.push(...batch);
    } while (cursor !== '0');
    assert.equal(keys.length, 6);
    for (const key of keys) {
      expectedBytes += (await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) as number;
    }
    assert.equal(stats.bytes, expectedBytes);
    assert.ok(stats.recordBytes > 0 && stats.recordBytes < stats.bytes);
    assert.equal(stats.nextLeaseToExpire.key, 'order-running');
    assert.ok(stats.nextLeaseToExpire.leaseExpiresInMs <= 20_000);
    // The lease's claim time comes from its token (Redis keeps none): within this test file.
    assert.equal(stats.oldestRunning.key, 'order-running');
    const claimedAgoMs = Date.now() - Date.parse(stats.oldestRunning.claimedAt);
    assert.ok(claimedAgoMs >= 0 && claimedAgoMs < 120_000, `claimed ${claimedAgoMs} ms ago`);
  });

  it('stats prints a readable summary without --json', async () => {
    // Act
    const result = await cli('stats');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^running +1$/m);
    assert.match(result.stdout, /^completed +4 \(1 cached errors\)$/m);
    assert.match(result.stdout, /^next lease to expire +order-running in /m);
    assert.match(result.stdout, /^oldest running lease +order-running \(claimed /m);
  });
});
