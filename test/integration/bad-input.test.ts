// Bad input never poisons a key or hangs a caller: invalid keys, outcomes that cannot be
// encoded or are too large, and data under a record key that this library did not write.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor, MAX_KEY_LENGTH } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import {
  gate,
  keysUnder,
  plainRecordKey,
  rejectionOf,
  settledWithin,
  waitForWaiters,
} from './support.js';
import { ExecutorProcess } from './workers/executor-process.js';

/** Every rejection nobody handled while this file ran; the last test asserts there were none. */
const unhandledRejections: unknown[] = [];
const recordUnhandled = (reason: unknown) => unhandledRejections.push(reason);
process.on('unhandledRejection', recordUnhandled);
after(() => {
  process.off('unhandledRejection', recordUnhandled);
});

const SETTLES_WITHIN_MS = 10_000;

const codeOf = (error: unknown) => (error as { code?: unknown }).code;

describe('bad input', () => {
  let redis: Redis;
  let namespace: string;
  let executors: IdempotentExecutor[];

  const executor = (maxRecordBytes = 1_048_576) => {
    const created = new IdempotentExecutor({ redis, namespace, leaseMs: 1_000, maxRecordBytes });
    executors.push(created);
    return created;
  };
  /** Runs `key` with a fn that records that it ran; bounded, so a hang fails the test. */
  const runCounting = async (idempotent: IdempotentExecutor, key: unknown, value: unknown) => {
    let ran = false;
    const outcome = await settledWithin(
      idempotent
        .run(key as string, async () => {
          ran = true;
          return value;
        })
        .then(
          (result) => ({ ok: true as const, result }),
          (error: unknown) => ({ ok: false as const, error }),
        ),
      SETTLES_WITHIN_MS,
      `run(${JSON.stringify(String(key).slice(0, 40))})`,
    );
    return { ...outcome, ran };
  };

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('bad-input');
    executors = [];
  });
  afterEach(async () => {
    await stopAllWorkers();
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  describe('keys', () => {
    const invalidKeys: [string, unknown][] = [
      ['an empty string', ''],
      ['a number', 42],
      ['undefined', undefined],
      ['null', null],
      ['an object', { id: 'order-1' }],
      [`a string of ${MAX_KEY_LENGTH + 1} characters`, 'k'.repeat(MAX_KEY_LENGTH + 1)],
      ['a string ending in a lone high surrogate', 's\uD800'],
      ['a string ending in a lone low surrogate', 's\uDC00'],
      ['a string with a low surrogate before a high one', '\uDC00\uD800'],
    ];

    for (const [description, key] of invalidKeys) {
      it(`rejects ${description} as a key with IDEMPOTENCY_INVALID_KEY without running fn or writing to Redis`, async () => {
        // Prepare
        const idempotent = executor();

        // Act
        const outcome = await runCounting(idempotent, key, 'value');
        const inspected = await rejectionOf(idempotent.inspect(key as string));
        const forgotten = await rejectionOf(idempotent.forget(key as string));
        const written = await keysUnder(redis, namespace);

        // Assess
        assert.equal(outcome.ok, false);
        assert.equal(outcome.ok ? undefined : codeOf(outcome.error), 'IDEMPOTENCY_INVALID_KEY');
        assert.equal(outcome.ran, false);
        assert.equal(codeOf(inspected), 'IDEMPOTENCY_INVALID_KEY');
        assert.equal(codeOf(forgotten), 'IDEMPOTENCY_INVALID_KEY');
        assert.deepEqual(written, []);
      });
    }

    it('never lets keys with lone surrogates share a record with the key UTF-8 turns them into', async () => {
      // Prepare: "s\uFFFD" is what UTF-8 makes of both "s\uD800" and "s\uDC00"
      const idempotent = executor();
      const replaced = await runCounting(idempotent, 's\uFFFD', 'the replacement character');

      // Act
      const high = await runCounting(executor(), 's\uD800', 'a lone high surrogate');
      const low = await runCounting(executor(), 's\uDC00', 'a lone low surrogate');

      // Assess
      assert.deepEqual(replaced, { ok: true, result: 'the replacement character', ran: true });
      for (const refused of [high, low]) {
        assert.equal(refused.ran, false);
        assert.equal(refused.ok ? undefined : codeOf(refused.error), 'IDEMPOTENCY_INVALID_KEY');
      }
    });

    it('refuses a namespace with a lone surrogate when the executor is made', () => {
      // Act
      const made = () => new IdempotentExecutor({ redis, namespace: 'payments\uD800' });

      // Assess
      assert.throws(made, { code: 'IDEMPOTENCY_INVALID_OPTION', option: 'namespace' });
    });

    it(`accepts a key of exactly MAX_KEY_LENGTH (${MAX_KEY_LENGTH}) characters`, async () => {
      // Prepare
      const idempotent = executor();
      const key = 'k'.repeat(MAX_KEY_LENGTH);

      // Act
      const first = await runCounting(idempotent, key, 'stored');
      const second = await runCounting(idempotent, key, 'ran twice');

      // Assess
      assert.deepEqual(first, { ok: true, result: 'stored', ran: true });
      assert.deepEqual(second, { ok: true, result: 'stored', ran: false });
    });
  });

  describe('outcomes that cannot be stored', () => {
    const circular: Record<string, unknown> = { receipt: 'r-1' };
    circular.self = circular;
    let deep: unknown = 'bottom';
    for (let depth = 0; depth < 100_000; depth++) deep = { next: deep };
    const unencodable: [string, unknown][] = [
      ['a function', () => 'not data'],
      ['a circular object', circular],
      ['a symbol', Symbol('not data')],
      ['an object holding a function', { receipt: 'r-1', render: () => 'not data' }],
      [
        'an object whose getter throws',
        Object.defineProperty({ receipt: 'r-1' }, 'total', {
          enumerable: true,
          get() {
            throw new Error('the getter failed');
          },
        }),
      ],
      [
        'a Proxy whose ownKeys trap throws',
        new Proxy(
          {},
          {
            ownKeys() {
              throw new TypeError('the trap failed');
            },
          },
        ),
      ],
      ['a value nested 100,000 levels deep', deep],
    ];

    for (const [description, value] of unencodable) {
      it(`rejects ${description} with IDEMPOTENCY_SERIALIZATION and frees the key: the next run runs fn and succeeds`, async () => {
        // Prepare
        const idempotent = executor();

        // Act
        const first = await runCounting(idempotent, 'order-1', value);
        const afterwards = await idempotent.inspect('order-1');
        const next = await runCounting(executor(), 'order-1', { receipt: 'r-2' });

        // Assess
        assert.equal(first.ran, true);
        assert.equal(first.ok ? undefined : codeOf(first.error), 'IDEMPOTENCY_SERIALIZATION');
        assert.deepEqual(afterwards, { state: 'absent' });
        assert.deepEqual(next, { ok: true, result: { receipt: 'r-2' }, ran: true });
      });
    }

    it('rejects an error it cannot encode (a property holding a function) with IDEMPOTENCY_SERIALIZATION and frees the key', async () => {
      // Prepare
      const idempotent = executor();
      const thrown = Object.assign(new Error('declined'), { retry: () => 'not data' });

      // Act
      const first = await rejectionOf(
        idempotent.run('order-6', async () => {
          throw thrown;
        }),
      );
      const afterwards = await idempotent.inspect('order-6');
      const next = await runCounting(idempotent, 'order-6', 'stored');

      // Assess
      assert.equal(codeOf(first), 'IDEMPOTENCY_SERIALIZATION');
      assert.deepEqual(afterwards, { state: 'absent' });
      assert.deepEqual(next, { ok: true, result: 'stored', ran: true });
    });

    it('rejects a fingerprint it cannot encode with IDEMPOTENCY_SERIALIZATION without running fn', async () => {
      // Prepare
      const idempotent = executor();
      let ran = false;

      // Act
      const error = await rejectionOf(
        idempotent.run(
          'order-7',
          async () => {
            ran = true;
            return 'should not run';
          },
          { fingerprint: { amount: 1, callback: () => 'not data' } },
        ),
      );
      const afterwards = await idempotent.inspect('order-7');

      // Assess
      assert.equal(codeOf(error), 'IDEMPOTENCY_SERIALIZATION');
      assert.equal(ran, false);
      assert.deepEqual(afterwards, { state: 'absent' });
    });

    it('keeps a key whose result was over maxRecordBytes marked as executed: the caller gets its value, duplicates get IDEMPOTENCY_OUTCOME_NOT_STORED and never run fn', async () => {
      // Prepare
      const big = 'x'.repeat(4_096);

      // Act
      const first = await runCounting(executor(1_024), 'order-2', big);
      const afterwards = await executor(1_024).inspect('order-2');
      const duplicate = await runCounting(executor(1_024), 'order-2', 'ran twice');
      const forgotten = await executor(1_024).forget('order-2');
      const next = await runCounting(executor(1_024), 'order-2', 'x'.repeat(100));

      // Assess
      assert.deepEqual(first, { ok: true, result: big, ran: true });
      assert.equal(afterwards.state, 'completed');
      assert.equal(duplicate.ran, false);
      assert.equal(duplicate.ok, false);
      if (!duplicate.ok) {
        assert.equal(codeOf(duplicate.error), 'IDEMPOTENCY_OUTCOME_NOT_STORED');
        const { outcomeBytes } = duplicate.error as { outcomeBytes?: unknown };
        assert.ok(typeof outcomeBytes === 'number' && outcomeBytes > 4_096);
      }
      assert.equal(forgotten, true);
      assert.deepEqual(next, { ok: true, result: 'x'.repeat(100), ran: true });
    });

    it('replays an Invalid Date as an Invalid Date, never as another date', async () => {
      // Prepare
      await runCounting(executor(), 'order-8', { shippedAt: new Date(Number.NaN) });

      // Act
      const replayed = await runCounting(executor(), 'order-8', 'ran twice');

      // Assess
      assert.equal(replayed.ran, false);
      assert.ok(replayed.ok);
      const shippedAt = (replayed.result as { shippedAt: unknown }).shippedAt;
      assert.ok(shippedAt instanceof Date);
      assert.ok(Number.isNaN(shippedAt.getTime()));
    });

    it('settles a waiter in another process when the running value cannot be stored (an error, or its own run)', async () => {
      // Prepare
      const [worker] = await ExecutorProcess.startMany(1, {
        redisUrl: REDIS_URL,
        counterUrl: REDIS_URL,
        namespace,
        leaseMs: 1_000,
      });
      assert.ok(worker);
      const release = gate();
      const started = gate();
      const owning = executor().run('order-3', async () => {
        started.open();
        await release.promise;
        return { render: () => 'not data' };
      });
      await started.promise;
      const waiting = worker.run({
        key: 'order-3',
        fn: { result: { kind: 'value', value: 'the waiter ran fn' } },
      });
      await waitForWaiters(redis, namespace, 1);

      // Act
      release.open();
      const ownerError = await rejectionOf(owning);
      const [waited] = await worker.results(waiting, 1, SETTLES_WITHIN_MS);

      // Assess
      assert.equal(codeOf(ownerError), 'IDEMPOTENCY_SERIALIZATION');
      assert.ok(waited);
      if (waited.ok) assert.equal(waited.value, 'the waiter ran fn');
      else assert.equal(waited.error.code, 'IDEMPOTENCY_SERIALIZATION');
    });
  });

  describe('data under a record key that this library did not write', () => {
    const garbage: [string, Buffer][] = [
      ['text', Buffer.from('not a record at all')],
      ['the record tag and bytes that are not msgpack', Buffer.from([0x01, 0xc1, 0xde, 0xad])],
      ['the record tag and msgpack of the wrong shape', Buffer.from([0x01, 0x93, 1, 2, 3])],
      ['a release notice', Buffer.from([0x02, 0x92, 0xc0, 0xc0])],
      [
        // [0, ext 42 (a type the library never writes), null, 1, 2]
        'a record holding a msgpack extension type the library never writes',
        Buffer.from([0x01, 0x95, 0x00, 0xd4, 42, 0x00, 0xc0, 0x01, 0x02]),
      ],
      ['an empty string', Buffer.alloc(0)],
      ['a lease token without expiry', Buffer.from('0123456789abcdef0123456789abcdef')],
    ];

    for (const [description, bytes] of garbage) {
      it(`reports ${description} as IDEMPOTENCY_CORRUPT_RECORD without hanging, and forget clears it so the next run works`, async () => {
        // Prepare
        const idempotent = executor();
        await redis.set(plainRecordKey(namespace, 'order-4'), bytes);

        // Act
        const corrupt = await runCounting(idempotent, 'order-4', 'should not run');
        const forgotten = await idempotent.forget('order-4');
        const next = await runCounting(idempotent, 'order-4', 'stored');

        // Assess
        assert.equal(corrupt.ok ? undefined : codeOf(corrupt.error), 'IDEMPOTENCY_CORRUPT_RECORD');
        assert.equal(corrupt.ran, false);
        assert.equal(forgotten, true);
        assert.deepEqual(next, { ok: true, result: 'stored', ran: true });
      });
    }

    const otherTypes: [string, (key: string) => Promise<unknown>][] = [
      ['a hash', (key) => redis.hset(key, 'field', 'value')],
      ['a list', (key) => redis.rpush(key, 'item')],
      ['a set', (key) => redis.sadd(key, 'member')],
      ['a sorted set', (key) => redis.zadd(key, 1, 'member')],
    ];

    for (const [description, write] of otherTypes) {
      it(`reports a record key holding ${description} as IDEMPOTENCY_CORRUPT_RECORD, and forget clears it so the next run works`, async () => {
        // Prepare
        const idempotent = executor();
        await write(plainRecordKey(namespace, 'order-5'));

        // Act
        const corrupt = await runCounting(idempotent, 'order-5', 'should not run');
        const inspected = await rejectionOf(idempotent.inspect('order-5'));
        const forgotten = await idempotent.forget('order-5');
        const next = await runCounting(idempotent, 'order-5', 'stored');

        // Assess
        assert.equal(corrupt.ok ? undefined : codeOf(corrupt.error), 'IDEMPOTENCY_CORRUPT_RECORD');
        assert.equal(corrupt.ran, false);
        assert.equal(codeOf(inspected), 'IDEMPOTENCY_CORRUPT_RECORD');
        assert.equal(forgotten, true);
        assert.deepEqual(next, { ok: true, result: 'stored', ran: true });
      });
    }
  });

  it('answers IDEMPOTENCY_CORRUPT_RECORD from inspect() as from run() for a lease token with no expiry', async () => {
    // Prepare
    const idempotent = executor();
    await redis.set(plainRecordKey(namespace, 'order-9'), '0123456789abcdef0123456789abcdef');

    // Act
    const ran = await runCounting(idempotent, 'order-9', 'should not run');
    const inspected = await rejectionOf(idempotent.inspect('order-9'));

    // Assess
    assert.equal(ran.ok ? undefined : codeOf(ran.error), 'IDEMPOTENCY_CORRUPT_RECORD');
    assert.equal(codeOf(inspected), 'IDEMPOTENCY_CORRUPT_RECORD');
  });

  for (const [description, write] of [
    ['text that is not a number', (key: string) => redis.set(key, 'not a number')],
    ['a hash', (key: string) => redis.hset(key, 'field', 'value')],
  ] as const) {
    it(`answers IDEMPOTENCY_CORRUPT_RECORD, not an outage, for a fence counter holding ${description}`, async () => {
      // Prepare
      await write(`${plainRecordKey(namespace, 'order-10')}:fence`);

      // Act
      const error = await rejectionOf(
        executor().run('order-10', (ctx) => ctx.fencingToken(), {
          shouldCacheError: () => false,
        }),
      );

      // Assess
      assert.equal(codeOf(error), 'IDEMPOTENCY_CORRUPT_RECORD');
    });
  }

  it('left no rejection unhandled in any of the cases above', async () => {
    // Assess (after a turn of the event loop, so late rejections are reported too)
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(unhandledRejections, []);
  });
});
