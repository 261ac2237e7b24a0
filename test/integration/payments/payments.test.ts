import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { isTransientProviderError, PaymentGuard } from '../../../src/adapters/payments/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { WorkerProcess } from '../../helpers/worker/parent.js';
import type { NoRequests } from '../../helpers/worker/protocol.js';
import { CardDeclinedError, chargeThroughProvider, ProviderHttpError } from './client.js';
import { FakeProvider } from './provider.js';
import type { ChargeClientConfig, OutcomeEvent } from './workers/charge-client.js';

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
    const config: ChargeClientConfig = { providerUrl, namespace: storm, orders, calls: 3 };
    const workers = [0, 1, 2].map(
      () =>
        new WorkerProcess<NoRequests, OutcomeEvent>(
          new URL('./workers/charge-client.ts', import.meta.url),
          config,
        ),
    );
    const results: OutcomeEvent[] = [];
    for (const worker of workers) {
      for (let i = 0; i < orders * 3; i++) results.push(await worker.next(30_000));
      assert.equal((await worker.ended).code, 0, worker.stderr);
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

  it('gives distinct downstream and executor keys to (scope, key) pairs a NUL join confused', async () => {
    // Prepare: joined with a NUL, both pairs read 'a\0b\0c'.
    const seen: string[] = [];
    const call = (ctx: { idempotencyKey: string }) => {
      seen.push(ctx.idempotencyKey);
      return ctx.idempotencyKey;
    };

    // Act
    await payments.run({ key: 'c', scope: 'a\0b', params: {} }, call);
    await payments.run({ key: 'b\0c', scope: 'a', params: {} }, call);

    // Assess: two orders, two provider calls, two provider keys, two records.
    assert.equal(seen.length, 2);
    assert.notEqual(seen[0], seen[1]);
    assert.equal(seen[0], payments.idempotencyKeyOf('c', 'a\0b'));
    assert.equal(seen[1], payments.idempotencyKeyOf('b\0c', 'a'));
    assert.notEqual(payments.executorKeyOf('c', 'a\0b'), payments.executorKeyOf('b\0c', 'a'));
    // Keys, scopes and the separators inside them stay apart in the executor key too.
    assert.notEqual(payments.executorKeyOf('c', 'a:b'), payments.executorKeyOf('b:c', 'a'));
    assert.equal(
      payments.executorKeyOf('order-1001', 'merchant-7'),
      'payment:merchant-7:order-1001',
    );
  });

  it('gives a long scope and a scope spelling its hash distinct executor keys', () => {
    // scopedKey replaces a part past the key limit by `#<sha256>`; a scope that is that text
    // must not land on the same record.
    const long = 'm'.repeat(1_100);
    const spelled = `#${createHash('sha256').update(long).digest('base64url')}`;
    assert.notEqual(payments.executorKeyOf('o-1', long), payments.executorKeyOf('o-1', spelled));
  });

  it('keeps the 0.1 downstream key of every (scope, key) pair without a NUL', () => {
    // An order whose first attempt timed out before an upgrade must reach the provider under
    // the same key after it, or the provider charges it a second time.
    const v01 = (key: string, scope: string) =>
      `ie_${createHash('sha256').update(`${scope}\u0000${key}`).digest('hex').slice(0, 40)}`;
    for (const [key, scope] of [
      ['order-1001', 'merchant-7'],
      ['o:1', ''],
      ['ключ', 'm%2F'],
    ] as const) {
      assert.equal(payments.idempotencyKeyOf(key, scope), v01(key, scope), `${scope} / ${key}`);
    }
  });

  it('fingerprints params without their undefined-valued properties, as SDKs send them', async () => {
    // Prepare
    let calls = 0;
    const call = () => ++calls;
    await payments.run(
      {
        key: 'o-undefined',
        params: { amount: 100, metadata: undefined, shipping: { name: 'A', phone: undefined } },
      },
      call,
    );

    // Act: the same request, written without the properties the SDK drops on the wire.
    const replayed = await payments.run(
      { key: 'o-undefined', params: { amount: 100, shipping: { name: 'A' } } },
      call,
    );
    const nested = await payments.run(
      { key: 'o-undefined', params: { shipping: { phone: undefined, name: 'A' }, amount: 100 } },
      call,
    );

    // Assess: one execution; `null` (Stripe's "unset") is still another request.
    assert.equal(calls, 1);
    assert.equal(replayed, 1);
    assert.equal(nested, 1);
    await assert.rejects(
      payments.run({ key: 'o-undefined', params: { amount: 100, metadata: null } }, call),
      { code: 'IDEMPOTENCY_KEY_REUSED' },
    );
  });

  it('rejects, never throws synchronously, keys and scopes that are not well-formed Unicode', async () => {
    let calls = 0;
    const call = () => ++calls;
    for (const operation of [
      { key: 's\uD800', params: {} },
      { key: 's\uDC00', params: {} },
      { key: 'o-1', scope: 'm\uD800', params: {} },
    ]) {
      let pending: Promise<unknown> | undefined;
      assert.doesNotThrow(() => {
        pending = payments.run(operation, call);
      }, JSON.stringify(operation));
      await assert.rejects(pending!, { code: 'IDEMPOTENCY_INVALID_KEY' });
      assert.throws(() => payments.executorKeyOf(operation.key, operation.scope), {
        code: 'IDEMPOTENCY_INVALID_KEY',
      });
      assert.throws(() => payments.idempotencyKeyOf(operation.key, operation.scope), {
        code: 'IDEMPOTENCY_INVALID_KEY',
      });
    }
    // A well-formed pair of surrogates is a character like any other.
    assert.equal(await payments.run({ key: 's\uD83D\uDE00', params: {} }, call), 1);
    assert.equal(calls, 1);
  });

  it('rejects bad operations with typed errors, never a synchronous throw', async () => {
    const call = () => 1;
    const bad: [unknown, unknown, string][] = [
      [null, call, 'IDEMPOTENCY_INVALID_OPTION'],
      [{ key: 'o-1', params: {} }, 'not a function', 'IDEMPOTENCY_INVALID_OPTION'],
      [{ key: '', params: {} }, call, 'IDEMPOTENCY_INVALID_KEY'],
      [{ key: 42, params: {} }, call, 'IDEMPOTENCY_INVALID_KEY'],
      [{ key: 'o-1', scope: 7, params: {} }, call, 'IDEMPOTENCY_INVALID_KEY'],
    ];
    for (const [operation, fn] of bad) {
      assert.doesNotThrow(() => payments.run(operation as never, fn as never).catch(() => {}));
    }
    for (const [operation, fn, code] of bad) {
      await assert.rejects(payments.run(operation as never, fn as never), { code });
    }
  });

  it('refuses bad options with InvalidOptionError, including a keyPrefix that is not well-formed', () => {
    for (const options of [
      { keyPrefix: '' },
      { keyPrefix: 'pay\uD800' },
      { keyPrefix: 7 },
      { isTransient: 1 },
      { waitTimeoutMs: 0 },
      { waitTimeoutMs: 1.5 },
    ]) {
      assert.throws(() => new PaymentGuard(executor, options as never), {
        code: 'IDEMPOTENCY_INVALID_OPTION',
      });
    }
    assert.throws(() => new PaymentGuard(executor, null as never), {
      code: 'IDEMPOTENCY_INVALID_OPTION',
    });
    assert.throws(() => new PaymentGuard({} as never), { code: 'IDEMPOTENCY_INVALID_OPTION' });
  });
});

describe('isTransientProviderError', () => {
  // stripe-node's own classes, built the way its RequestSender builds them.
  const stripeTimeout = new Stripe.errors.StripeConnectionError({
    message: 'Request aborted due to timeout being reached (80000ms)',
    detail: Object.assign(new TypeError('ETIMEDOUT'), { code: 'ETIMEDOUT' }),
  });
  // Adyen's @adyen/api-library 32.1.0 and PayPal's @paypal/paypal-server-sdk 2.5.0 are not
  // dependencies of this repository: these mirror, field for field, what each threw against a
  // loopback HTTPS provider (a timeout, a refused connection, a 409, a 422), and what their
  // sources build. Adyen's ApiException does not extend Error.
  class ApiException {
    readonly name = 'ApiException';
    constructor(
      readonly message: string,
      readonly statusCode = 500,
    ) {}
  }
  class HttpClientException extends Error {
    override readonly name = 'HttpClientException';
    constructor(
      message: string,
      readonly statusCode: number,
      readonly errorCode: string,
    ) {
      super(message);
    }
  }
  // APIMatic's AbortError never sets `name`.
  class AbortError extends Error {}
  class CustomError extends Error {
    constructor(readonly statusCode: number) {
      super('The error response.');
    }
  }
  const axiosError = (code: string, message: string) =>
    Object.assign(new Error(message), { name: 'AxiosError', code });

  it('is true for no answer, a provider failure, a busy key or a rate limit, as each SDK throws them', () => {
    const transient: [string, unknown][] = [
      ['stripe timeout', stripeTimeout],
      [
        'stripe refused',
        new Stripe.errors.StripeConnectionError({
          message: 'An error occurred with our connection to Stripe.',
          detail: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }),
        }),
      ],
      [
        'stripe 409',
        Stripe.errors.StripeError.generate({
          statusCode: 409,
          type: 'invalid_request_error',
          code: 'idempotency_key_in_use',
        }),
      ],
      [
        'stripe rate limit as 400',
        Stripe.errors.StripeError.generate({ statusCode: 400, code: 'rate_limit' }),
      ],
      ['stripe unreadable response', new Stripe.errors.StripeAPIError({ message: 'Invalid JSON' })],
      ['stripe 500', Stripe.errors.StripeError.generate({ statusCode: 500, type: 'api_error' })],
      ['adyen timeout', new ApiException('socket hang up')],
      ['adyen refused', new ApiException('connect ECONNREFUSED 127.0.0.1:443')],
      ['adyen 0.x network error without a status', new ApiException('socket hang up', undefined)],
      ['adyen 500', new HttpClientException('HTTP Exception: 500.', 500, '905')],
      ['paypal timeout', axiosError('ECONNABORTED', 'timeout of 200ms exceeded')],
      ['paypal refused', axiosError('ECONNREFUSED', 'connect ECONNREFUSED 127.0.0.1:443')],
      ['paypal aborted', new AbortError('The HTTP call was aborted.')],
      ['paypal 503', new CustomError(503)],
      ['fetch timeout', new DOMException('timed out', 'TimeoutError')],
      ['408', Object.assign(new Error('x'), { response: { status: 408 } })],
      ['429', Object.assign(new Error('x'), { status: 429 })],
      ['wrapped', new Error('charge failed', { cause: stripeTimeout })],
    ];
    for (const [what, error] of transient)
      assert.equal(isTransientProviderError(error), true, what);
  });

  it("is false for the provider's answers and for errors of unknown shape", () => {
    const permanent: [string, unknown][] = [
      [
        'stripe decline',
        Stripe.errors.StripeError.generate({
          statusCode: 402,
          type: 'card_error',
          code: 'card_declined',
          decline_code: 'insufficient_funds',
        }),
      ],
      [
        'stripe key reused with other params',
        Stripe.errors.StripeError.generate({ statusCode: 400, type: 'idempotency_error' }),
      ],
      [
        'stripe invalid request',
        Stripe.errors.StripeError.generate({ statusCode: 400, type: 'invalid_request_error' }),
      ],
      ['adyen 422', new HttpClientException('HTTP Exception: 422.', 422, '101')],
      ['paypal 422', new CustomError(422)],
      ['own decline', new CardDeclinedError('stolen_card')],
      ['a bug', new TypeError('x is not a function')],
      ['a string', 'a string'],
      ['null', null],
    ];
    for (const [what, error] of permanent) {
      assert.equal(isTransientProviderError(error), false, what);
    }
  });
});
