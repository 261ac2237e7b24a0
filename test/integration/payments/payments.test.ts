import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { isTransientProviderError, PaymentGuard } from '../../../src/adapters/payments/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { startWorker } from '../../helpers/processes.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { CardDeclinedError, chargeThroughProvider, ProviderHttpError } from './client.js';
import { FakeProvider } from './provider.js';

const redis = connect();
after(() => redis.quit());

describe('PaymentGuard', () => {
  let provider: FakeProvider;
  let providerUrl: string;
  let namespace: string;
  let executor: IdempotentExecutor;
  let payments: PaymentGuard;

  before(async () => {
    provider = new FakeProvider();
    providerUrl = await provider.start();
    namespace = uniqueNamespace('payments');
    executor = new IdempotentExecutor({
      redis,
      namespace,
      errorClasses: [CardDeclinedError, ProviderHttpError],
    });
    payments = new PaymentGuard(executor);
  });
  after(async () => {
    await executor.close();
    await provider.stop();
    await deleteNamespace(redis, namespace);
  });

  it('charges each order exactly once under a retry storm from 3 processes', async () => {
    // Prepare: 12 orders; some decline, some fail once with a 503, some answer too late once.
    const orders = 12;
    for (let i = 0; i < orders; i++) {
      provider.behave(`order-${i}`, (['ok', 'decline', 'fail-once', 'slow-once'] as const)[i % 4]!);
    }
    const storm = uniqueNamespace('payments-storm');

    // Act
    const workers = [0, 1, 2].map(() =>
      startWorker(new URL('./workers/charge-client.ts', import.meta.url), [
        providerUrl,
        storm,
        String(orders),
        '3',
      ]),
    );
    const results: { order: string; outcome: string }[] = [];
    for (const worker of workers) {
      for (let i = 0; i < orders * 3; i++)
        results.push(await worker.next<{ order: string; outcome: string }>(30_000));
      assert.equal(await worker.exited, 0, worker.stderr);
    }
    await deleteNamespace(redis, storm);

    // Assess
    for (let i = 0; i < orders; i++) {
      const order = `order-${i}`;
      const declined = i % 4 === 1;
      assert.equal(provider.charges.get(order) ?? 0, declined ? 0 : 1, `charges of ${order}`);
      const outcomes = new Set(results.filter((r) => r.order === order).map((r) => r.outcome));
      assert.deepEqual([...outcomes], [declined ? 'declined' : 'charged'], `outcomes of ${order}`);
      assert.equal(provider.keysByOrder.get(order)?.size, 1, `one downstream key for ${order}`);
    }
    // 9 calls per order reached the provider once: the executor, not the provider, deduped.
    for (let i = 0; i < orders; i += 4) assert.equal(provider.requests.get(`order-${i}`), 1);
    // The 503 and the late answer were retried against the provider with the same key.
    assert.ok((provider.requests.get('order-2') ?? 0) >= 2);
    assert.ok((provider.requests.get('order-3') ?? 0) >= 2);
  });

  it('refuses other parameters under the same key before calling the provider', async () => {
    let calls = 0;
    const call = () => {
      calls++;
      return 'ok';
    };
    await payments.run({ key: 'o-reuse', params: { amount: 100 } }, call);

    await assert.rejects(payments.run({ key: 'o-reuse', params: { amount: 999 } }, call), {
      code: 'IDEMPOTENCY_KEY_REUSED',
    });
    assert.equal(calls, 1);
  });

  it('replays a decline with its class and reason without calling the provider again', async () => {
    provider.behave('o-decline', 'decline');
    const charge = (ctx: { idempotencyKey: string }) =>
      chargeThroughProvider(providerUrl, ctx.idempotencyKey, { order: 'o-decline', amount: 5 });
    const first = await payments
      .run({ key: 'o-decline', params: { amount: 5 } }, charge)
      .catch((e: unknown) => e);
    const requestsAfterFirst = provider.requests.get('o-decline');

    const second = await payments
      .run({ key: 'o-decline', params: { amount: 5 } }, charge)
      .catch((e: unknown) => e);

    assert.ok(first instanceof CardDeclinedError);
    assert.ok(second instanceof CardDeclinedError);
    assert.equal(second.declineCode, 'insufficient_funds');
    assert.equal(provider.requests.get('o-decline'), requestsAfterFirst);
  });

  it('gives every re-execution of a key the same downstream key, distinct per scope', async () => {
    const seen: string[] = [];
    const failOnce = (ctx: { idempotencyKey: string }) => {
      seen.push(ctx.idempotencyKey);
      if (seen.length === 1) throw new ProviderHttpError(502);
      return 'charged';
    };
    await assert.rejects(payments.run({ key: 'o-key', scope: 'm-1', params: {} }, failOnce));
    await payments.run({ key: 'o-key', scope: 'm-1', params: {} }, failOnce);
    const otherScope = await payments.run(
      { key: 'o-key', scope: 'm-2', params: {} },
      (ctx) => ctx.idempotencyKey,
    );

    assert.equal(seen.length, 2);
    assert.equal(seen[0], seen[1]);
    assert.match(seen[0]!, /^ie_[0-9a-f]{40}$/);
    assert.notEqual(otherScope, seen[0]);
  });

  it('treats network failures, timeouts and 5xx/408/429 as transient, declines and 4xx as not', () => {
    const withCode = (code: string) => Object.assign(new Error('net'), { code });
    const transient = [
      new ProviderHttpError(503),
      Object.assign(new Error('x'), { statusCode: 429 }),
      Object.assign(new Error('x'), { response: { status: 408 } }),
      withCode('ECONNRESET'),
      new Error('wrapped', { cause: withCode('ETIMEDOUT') }),
      new DOMException('timed out', 'TimeoutError'),
    ];
    const permanent = [
      new CardDeclinedError('stolen_card'),
      new ProviderHttpError(400),
      'a string',
      null,
    ];
    for (const error of transient)
      assert.equal(isTransientProviderError(error), true, String(error));
    for (const error of permanent)
      assert.equal(isTransientProviderError(error), false, String(error));
  });

  it('rejects bad options and keys with typed errors', async () => {
    assert.throws(() => new PaymentGuard(executor, { keyPrefix: '' }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    assert.throws(() => new PaymentGuard(executor, { isTransient: 1 as never }), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    await assert.rejects(
      payments.run({ key: '', params: {} }, () => 1),
      { code: 'IDEMPOTENCY_INVALID_KEY' },
    );
  });
});
