// The behavioural contract of IdempotentExecutor, run once per store (memory, Redis): the same
// semantics must hold whichever store is underneath.
import assert from 'node:assert/strict';
import { after, afterEach, beforeEach, describe, it } from 'node:test';
import {
  type ExecutorEvent,
  type ExecutorOptions,
  IdempotentExecutor,
  type RunContext,
  StoreUnavailableError,
  WaitTimeoutError,
} from '../../src/index.js';

export interface StoreUnderTest {
  readonly name: string;
  /** Options giving two executors that share one store (as two processes share a Redis). */
  options(namespace: string): ExecutorOptions;
  cleanUp(namespace: string): Promise<void>;
  close(): Promise<void>;
}

export class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
  constructor(
    message: string,
    readonly declineCode: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

class TransientError extends Error {
  override readonly name = 'TransientError';
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let counter = 0;
const nextNamespace = () => `contract-${process.pid}-${Date.now()}-${counter++}`;

export function behaviouralSuite(store: StoreUnderTest): void {
  describe(`IdempotentExecutor on ${store.name}`, () => {
    let namespace: string;
    let executors: IdempotentExecutor[];

    const executor = (extra: Partial<ExecutorOptions> = {}): IdempotentExecutor => {
      const created = new IdempotentExecutor({
        ...store.options(namespace),
        errorClasses: [CardDeclinedError],
        leaseMs: 1_000,
        ...extra,
      });
      executors.push(created);
      return created;
    };

    beforeEach(() => {
      namespace = nextNamespace();
      executors = [];
    });
    afterEach(async () => {
      await Promise.all(executors.map((created) => created.close()));
      await store.cleanUp(namespace);
    });
    after(() => store.close());

    it('runs fn once for concurrent calls and gives every caller its value', async () => {
      const first = executor();
      const second = executor();
      let runs = 0;
      const fn = async () => {
        runs++;
        await sleep(100);
        return { orderId: 'o-1', amount: 1200 };
      };

      const results = await Promise.all([
        first.run('order-1', fn),
        first.run('order-1', fn),
        second.run('order-1', fn),
        second.run('order-1', fn),
      ]);

      assert.equal(runs, 1);
      for (const result of results) assert.deepEqual(result, { orderId: 'o-1', amount: 1200 });
    });

    it('replays a completed value to a later caller without running fn', async () => {
      const first = executor();
      await first.run('order-2', async () => 'charged');

      let ranAgain = false;
      const replayed = await executor().run('order-2', async () => {
        ranAgain = true;
        return 'charged twice';
      });

      assert.equal(replayed, 'charged');
      assert.equal(ranAgain, false);
    });

    it('replays a cached error as the registered class with code, properties and cause', async () => {
      const first = executor();
      const thrown = new CardDeclinedError('Your card was declined', 'insufficient_funds', {
        cause: new Error('issuer said no'),
      });
      await assert.rejects(
        first.run('order-3', async () => {
          throw thrown;
        }),
        (err) => err === thrown,
      );

      const replay = await executor()
        .run('order-3', async () => 'should not run')
        .then(
          () => assert.fail('expected the cached error'),
          (err: unknown) => err,
        );

      assert.ok(replay instanceof CardDeclinedError);
      assert.equal(replay.message, 'Your card was declined');
      assert.equal(replay.code, 'card_declined');
      assert.equal(replay.declineCode, 'insufficient_funds');
      assert.ok(replay.cause instanceof Error);
      assert.equal(replay.cause.message, 'issuer said no');
    });

    it('replays an unregistered error class as ReplayedError with name, message and code', async () => {
      class UnknownError extends Error {
        override name = 'UnknownError';
        code = 'E_UNKNOWN';
        extra = 42;
      }
      await assert.rejects(
        executor().run('order-4', async () => {
          throw new UnknownError('odd');
        }),
        UnknownError,
      );

      const replay = await executor()
        .run('order-4', async () => 1)
        .catch((err: unknown) => err);

      assert.ok(replay instanceof Error);
      assert.equal(replay.constructor.name, 'ReplayedError');
      assert.equal(replay.name, 'UnknownError');
      assert.equal(replay.message, 'odd');
      assert.equal((replay as { code?: unknown }).code, 'E_UNKNOWN');
      assert.equal((replay as { extra?: unknown }).extra, 42);
    });

    it('replays thrown non-errors as the same value', async () => {
      await assert.rejects(
        executor().run('order-5', async () => {
          throw { status: 402, reason: 'declined' };
        }),
      );

      const replay = await executor()
        .run('order-5', async () => 1)
        .catch((err: unknown) => err);

      assert.deepEqual(replay, { status: 402, reason: 'declined' });
    });

    it('keeps undefined, Date, BigInt, Buffer, Uint8Array, Map and Set in a replayed value', async () => {
      const value = {
        missing: undefined,
        at: new Date('2026-01-02T03:04:05.678Z'),
        big: 2n ** 70n,
        buffer: Buffer.from('raw'),
        bytes: new Uint8Array([1, 2, 3]),
        map: new Map<unknown, unknown>([
          ['a', 1],
          [2, { nested: new Set(['x']) }],
        ]),
        list: [undefined, null, 1.5, 'two'],
      };
      await executor().run('order-6', async () => value);

      const replay = await executor().run('order-6', async () => null);

      assert.deepEqual(replay, value);
      assert.ok(Buffer.isBuffer((replay as typeof value).buffer));
      assert.ok('missing' in (replay as object));
    });

    it('frees the key after an error shouldCacheError rejects, so the next call runs fn', async () => {
      const options = { shouldCacheError: (err: unknown) => !(err instanceof TransientError) };
      const first = executor(options);
      await assert.rejects(
        first.run('order-7', async () => {
          throw new TransientError('gateway timeout');
        }),
        TransientError,
      );

      const retried = await executor(options).run('order-7', async () => 'charged on retry');

      assert.equal(retried, 'charged on retry');
    });

    it("never keeps the library's own transient errors that fn lets through, whatever shouldCacheError says", async () => {
      const passing = [
        new StoreUnavailableError(
          'Redis went away while fn asked for its fencing token',
          'order-t',
        ),
        new WaitTimeoutError('order-nested', 5),
      ];
      for (const [i, error] of passing.entries()) {
        const key = `order-t${i}`;
        await assert.rejects(
          executor({ shouldCacheError: () => true }).run(key, async () => {
            throw error;
          }),
          (thrown: unknown) => thrown === error,
        );

        const retried = await executor().run(key, async () => 'ran again');

        assert.equal(retried, 'ran again');
      }
    });

    it('hands an uncached error to the callers waiting at that moment', async () => {
      const options = { shouldCacheError: () => false };
      const owner = executor(options);
      const waiter = executor(options);
      const running = owner.run('order-8', async () => {
        await sleep(150);
        throw new TransientError('upstream 503');
      });
      await sleep(30);

      const waited = waiter
        .run('order-8', async () => 'waiter ran fn')
        .catch((err: unknown) => err);

      await assert.rejects(running, TransientError);
      const outcome = await waited;
      assert.ok(outcome instanceof Error, `expected the error, got ${String(outcome)}`);
      assert.equal(outcome.message, 'upstream 503');
    });

    it('rejects a later caller with another fingerprint with IDEMPOTENCY_KEY_REUSED', async () => {
      await executor().run('order-9', async () => 'ok', {
        fingerprint: { amount: 100, currency: 'EUR' },
      });

      await assert.rejects(
        executor().run('order-9', async () => 'other', {
          fingerprint: { amount: 999, currency: 'EUR' },
        }),
        { code: 'IDEMPOTENCY_KEY_REUSED' },
      );
    });

    it('treats fingerprints with the same properties in another order as equal', async () => {
      await executor().run('order-10', async () => 'ok', { fingerprint: { a: 1, b: [1, 2] } });

      const replay = await executor().run('order-10', async () => 'other', {
        fingerprint: { b: [1, 2], a: 1 },
      });

      assert.equal(replay, 'ok');
    });

    it('rejects a concurrent waiter with another fingerprint with IDEMPOTENCY_KEY_REUSED', async () => {
      const owner = executor();
      const running = owner.run(
        'order-11',
        async () => {
          await sleep(150);
          return 'ok';
        },
        { fingerprint: 'payload-a' },
      );
      await sleep(30);

      await assert.rejects(
        executor().run('order-11', async () => 'b', { fingerprint: 'payload-b' }),
        {
          code: 'IDEMPOTENCY_KEY_REUSED',
        },
      );
      assert.equal(await running, 'ok');
    });

    it('fails a duplicate at once with IDEMPOTENCY_IN_PROGRESS when wait is false', async () => {
      const owner = executor();
      const running = owner.run('order-12', async () => {
        await sleep(200);
        return 'done';
      });
      await sleep(30);

      await assert.rejects(
        executor().run('order-12', async () => 'dup', { wait: false }),
        {
          code: 'IDEMPOTENCY_IN_PROGRESS',
        },
      );
      await assert.rejects(
        owner.run('order-12', async () => 'dup', { wait: false }),
        {
          code: 'IDEMPOTENCY_IN_PROGRESS',
        },
      );
      assert.equal(await running, 'done');
    });

    it('gives up waiting after waitTimeoutMs with IDEMPOTENCY_WAIT_TIMEOUT', async () => {
      const owner = executor();
      const running = owner.run('order-13', async () => {
        await sleep(600);
        return 'slow';
      });
      await sleep(30);

      await assert.rejects(
        executor().run('order-13', async () => 'dup', { waitTimeoutMs: 150 }),
        {
          code: 'IDEMPOTENCY_WAIT_TIMEOUT',
        },
      );
      assert.equal(await running, 'slow');
    });

    it('stops only the aborted caller’s wait; the execution and other callers go on', async () => {
      const owner = executor();
      const other = executor();
      const running = owner.run('order-14', async () => {
        await sleep(200);
        return 'finished';
      });
      await sleep(30);
      const controller = new AbortController();

      const aborted = other.run('order-14', async () => 'dup', { signal: controller.signal });
      const patient = other.run('order-14', async () => 'dup');
      controller.abort(new Error('client went away'));

      await assert.rejects(aborted, { code: 'IDEMPOTENCY_ABORTED' });
      assert.equal(await patient, 'finished');
      assert.equal(await running, 'finished');
    });

    it('reports absent, running and completed through inspect, and forget deletes the record', async () => {
      const first = executor();
      assert.deepEqual(await first.inspect('order-15'), { state: 'absent' });
      const running = first.run('order-15', async () => {
        await sleep(100);
        return 1;
      });
      await sleep(30);

      const during = await first.inspect('order-15');
      await running;
      const done = await first.inspect('order-15');
      const forgotten = await first.forget('order-15');
      const afterForget = await first.inspect('order-15');

      assert.equal(during.state, 'running');
      assert.equal(done.state, 'completed');
      assert.equal(done.state === 'completed' && done.ok, true);
      assert.equal(forgotten, true);
      assert.deepEqual(afterForget, { state: 'absent' });
    });

    it('refuses to forget a running execution', async () => {
      const first = executor();
      const running = first.run('order-16', async () => {
        await sleep(150);
        return 1;
      });
      await sleep(30);

      await assert.rejects(first.forget('order-16'), { code: 'IDEMPOTENCY_IN_PROGRESS' });
      await running;
    });

    it('renews the lease while fn runs longer than several leases', async () => {
      const owner = executor({ leaseMs: 200 });
      let runs = 0;
      let signal: AbortSignal | undefined;
      const fn = async (ctx: RunContext) => {
        runs++;
        signal = ctx.signal;
        await sleep(900);
        return 'long';
      };

      const [a, b] = await Promise.all([
        owner.run('order-17', fn),
        sleep(50).then(() => executor({ leaseMs: 200 }).run('order-17', fn)),
      ]);

      assert.equal(a, 'long');
      assert.equal(b, 'long');
      assert.equal(runs, 1);
      assert.equal(signal?.aborted, false);
    });

    it('hands out strictly increasing fencing tokens across executions of a key', async () => {
      const first = executor({ shouldCacheError: () => false });
      const tokens: number[] = [];
      for (let i = 0; i < 3; i++) {
        await first
          .run('order-18', async (ctx) => {
            tokens.push(await ctx.fencingToken());
            tokens.push(await ctx.fencingToken());
            throw new TransientError('again');
          })
          .catch(() => {});
      }

      assert.equal(tokens.length, 6);
      for (let i = 0; i < 6; i += 2)
        assert.equal(tokens[i], tokens[i + 1], 'one token per execution');
      assert.ok(tokens[0]! < tokens[2]! && tokens[2]! < tokens[4]!, `tokens ${tokens.join(', ')}`);
    });

    it('keeps distinct namespaces and keys that would collide naively apart', async () => {
      const left = new IdempotentExecutor({ ...store.options(`${namespace}:a:b`) });
      const right = new IdempotentExecutor({ ...store.options(`${namespace}:a`) });
      executors.push(left, right);

      await left.run('c', async () => 'left');
      const fromRight = await right.run('b:c', async () => 'right');
      const braces = await left.run('{c}', async () => 'braces');
      const percent = await left.run('%7Bc%7D', async () => 'percent');

      assert.equal(fromRight, 'right');
      assert.equal(braces, 'braces');
      assert.equal(percent, 'percent');
      await store.cleanUp(`${namespace}:a:b`);
      await store.cleanUp(`${namespace}:a`);
    });

    it('rejects invalid keys with IDEMPOTENCY_INVALID_KEY', async () => {
      const first = executor();
      for (const key of ['', 'k'.repeat(1025), 42, null]) {
        await assert.rejects(
          first.run(key as string, async () => 1),
          { code: 'IDEMPOTENCY_INVALID_KEY' },
        );
      }
    });

    it('rejects unencodable values with IDEMPOTENCY_SERIALIZATION and frees the key', async () => {
      const first = executor();
      const circular: Record<string, unknown> = {};
      circular.self = circular;
      for (const [key, value] of [
        ['fn', () => 1],
        ['circular', circular],
        ['symbol', Symbol('s')],
      ] as const) {
        await assert.rejects(
          first.run(`order-19-${key}`, async () => value),
          {
            code: 'IDEMPOTENCY_SERIALIZATION',
          },
        );
        const retried = await first.run(`order-19-${key}`, async () => 'fine');
        assert.equal(retried, 'fine', `key ${key} is not poisoned`);
      }
    });

    it('keeps a key whose outcome was over maxRecordBytes marked as executed: the caller gets the value, a later duplicate gets IDEMPOTENCY_OUTCOME_NOT_STORED', async () => {
      const big = 'x'.repeat(2_000_000);
      let runs = 0;
      const value = await executor().run('order-19-big', async () => {
        runs++;
        return big;
      });
      await assert.rejects(
        executor().run('order-19-big', async () => {
          runs++;
          return 'ran twice';
        }),
        { code: 'IDEMPOTENCY_OUTCOME_NOT_STORED' },
      );

      assert.equal(value, big);
      assert.equal(runs, 1);
    });

    it('reports executions, joins and replays through onEvent', async () => {
      const events: ExecutorEvent['type'][] = [];
      const first = executor({ onEvent: (event) => events.push(event.type) });
      await Promise.all([
        first.run('order-20', async () => {
          await sleep(50);
          return 1;
        }),
        first.run('order-20', async () => 2),
      ]);
      await executor({ onEvent: (event) => events.push(event.type) }).run(
        'order-20',
        async () => 3,
      );

      assert.deepEqual(events, ['joined', 'executed', 'replayed']);
    });

    it('fails new calls after close with IDEMPOTENCY_STORE_UNAVAILABLE', async () => {
      const first = executor();
      await first.close();

      await assert.rejects(
        first.run('order-21', async () => 1),
        { code: 'IDEMPOTENCY_STORE_UNAVAILABLE' },
      );
    });
  });
}
