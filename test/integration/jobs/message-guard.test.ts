// MessageGuard against the shared Redis, broker aside: keys, the message's own signal, and the
// errors it throws before any work runs.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { isUnrecoverable, MessageGuard } from '../../../src/adapters/jobs/index.js';
import { ErrorCode, IdempotentExecutor, InvalidKeyError } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { gate, rejectionOf } from '../support.js';

describe('MessageGuard', () => {
  let redis: Redis;
  let namespace: string;
  let executor: IdempotentExecutor;

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('jobs');
    executor = new IdempotentExecutor({ redis, namespace });
  });
  afterEach(async () => {
    await executor.close();
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('keys each message as <scope>:<id>, escaping the id so distinct (scope, id) pairs never share a key', async () => {
    // Prepare
    const outer = new MessageGuard(executor, { scope: 'a:b' });
    const inner = new MessageGuard(executor, { scope: 'a' });

    // Act
    const fromOuter = await outer.run('c', () => 'outer');
    const fromInner = await inner.run('b:c', () => 'inner');

    // Assess
    assert.deepEqual([fromOuter, fromInner], ['outer', 'inner']);
    assert.equal(outer.keyOf('c'), 'a:b:c');
    assert.equal(inner.keyOf('b:c'), 'a:b%3Ac');
    assert.equal(inner.keyOf('100%'), 'a:100%25');
    assert.equal((await executor.inspect(inner.keyOf('b:c'))).state, 'completed');
  });

  it('rejects an empty, missing or non-string message id with IDEMPOTENCY_INVALID_KEY, as unrecoverable, without running the work', async () => {
    // Prepare
    const guard = new MessageGuard(executor, { scope: 'orders' });
    let runs = 0;
    const work = () => {
      runs += 1;
    };

    // Act
    const empty = await rejectionOf(guard.run('', work));
    const missing = await rejectionOf(guard.run(undefined as unknown as string, work));
    const number = await rejectionOf(guard.run(42 as unknown as string, work));

    // Assess
    assert.equal(runs, 0);
    for (const error of [empty, missing, number]) {
      assert.ok(error instanceof InvalidKeyError);
      assert.equal(error.code, ErrorCode.INVALID_KEY);
      assert.match(error.message, /^IDEMPOTENCY_INVALID_KEY: Expected the message id to be /);
      assert.equal(isUnrecoverable(error), true);
    }
  });

  it("does not call the work's own errors, or the library's other errors, unrecoverable", async () => {
    // Prepare
    const guard = new MessageGuard(executor, { scope: 'orders' });

    // Act
    const own = await rejectionOf(
      guard.run('m-own', () => {
        throw new Error('warehouse unavailable');
      }),
    );
    const invalidInWork = await rejectionOf(
      guard.run('m-nested', () => executor.run('', () => 'nested')),
    );

    // Assess
    assert.equal(isUnrecoverable(own), false);
    assert.equal((invalidInWork as { code?: unknown }).code, ErrorCode.INVALID_KEY);
    assert.equal(isUnrecoverable(invalidInWork), false);
    for (const value of [
      undefined,
      null,
      'IDEMPOTENCY_INVALID_KEY',
      { name: 'UnrecoverableError' },
    ]) {
      assert.equal(isUnrecoverable(value), false);
    }
  });

  it("aborts the work's signal with the message's own signal, and stores what the work then returns", async () => {
    // Prepare
    const guard = new MessageGuard(executor, { scope: 'orders' });
    const shutdown = new AbortController();
    const workStarted = gate();

    // Act
    const running = guard.run(
      'm-1',
      async (ctx) => {
        workStarted.open();
        await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
        return `stopped: ${String(ctx.signal.reason)}`;
      },
      { signal: shutdown.signal },
    );
    await workStarted.promise;
    shutdown.abort('consumer shutting down');

    // Assess
    assert.equal(await running, 'stopped: consumer shutting down');
    assert.equal(await guard.run('m-1', () => 'again'), 'stopped: consumer shutting down');
  });

  it('stops listening on a long-lived signal once each message is processed', async () => {
    // Prepare: one consumer-wide signal shared by every message.
    const guard = new MessageGuard(executor, { scope: 'orders' });
    const shutdown = new AbortController();

    // Act
    for (let i = 0; i < 20; i++) {
      await guard.run(`m-${i}`, (ctx) => ctx.signal.aborted, { signal: shutdown.signal });
    }
    await rejectionOf(
      guard.run(
        'm-failing',
        (ctx) => {
          ctx.signal.throwIfAborted();
          throw new Error('failed');
        },
        { signal: shutdown.signal },
      ),
    );

    // Assess
    assert.equal(getEventListeners(shutdown.signal, 'abort').length, 0);
  });

  it('stops a duplicate waiting for a message running elsewhere when its signal aborts, leaving that run alone', async () => {
    // Prepare: the same message in two consumers (two executors: no in-process sharing).
    const other = new IdempotentExecutor({ redis, namespace });
    const firstGuard = new MessageGuard(executor, { scope: 'orders' });
    const secondGuard = new MessageGuard(other, { scope: 'orders' });
    const release = gate();
    const workStarted = gate();
    const running = firstGuard.run('m-2', async () => {
      workStarted.open();
      await release.promise;
      return 'done once';
    });
    await workStarted.promise;
    const duplicate = new AbortController();

    try {
      // Act
      const waiting = rejectionOf(
        secondGuard.run('m-2', () => 'twice', { signal: duplicate.signal }),
      );
      duplicate.abort('redelivery cancelled');
      const error = await waiting;
      release.open();

      // Assess
      assert.equal((error as { code?: unknown }).code, ErrorCode.ABORTED);
      assert.equal(await running, 'done once');
      assert.equal(await secondGuard.run('m-2', () => 'twice'), 'done once');
    } finally {
      release.open();
      await other.close();
    }
  });
});
