// PaymentGuard wrapping the real stripe-node SDK exactly as docs/adapters/payments.md shows,
// against the loopback provider: what the SDK really throws on a timeout, an unreachable
// provider, a 409 "idempotency key in use" and a decline, and what the guard caches of each.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import Stripe from 'stripe';
import { PaymentGuard } from '../../../src/adapters/payments/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import { connect, deleteNamespace, freePort, uniqueNamespace } from '../../helpers/redis.js';
import { FakeProvider } from './provider.js';

const SDK_TIMEOUT_MS = 250;
const redis = connect();
after(() => redis.quit());

function stripeAt(port: number): Stripe {
  return new Stripe('sk_test_x', {
    host: '127.0.0.1',
    port,
    protocol: 'http',
    timeout: SDK_TIMEOUT_MS,
    maxNetworkRetries: 0,
  });
}

interface StripeErrorFields {
  readonly name: string;
  readonly type: string;
  readonly statusCode?: number;
  readonly code?: string;
  readonly detail?: { readonly code?: string };
}

describe('PaymentGuard with the stripe-node SDK', () => {
  // Slower than the SDK's timeout, so a 'slow-once' order is charged but answered too late.
  const provider = new FakeProvider(SDK_TIMEOUT_MS * 3);
  let stripe: Stripe;
  let namespace: string;
  let executor: IdempotentExecutor;
  let payments: PaymentGuard;

  before(async () => {
    await provider.start();
    stripe = stripeAt(provider.port);
    namespace = uniqueNamespace('payments-stripe');
    executor = new IdempotentExecutor({
      redis,
      namespace,
      errorClasses: [Stripe.errors.StripeCardError],
    });
    payments = new PaymentGuard(executor);
  });
  after(async () => {
    await executor.close();
    await provider.stop();
    await deleteNamespace(redis, namespace);
  });

  /** The documented call: `stripe.paymentIntents.create(ctx.params, { idempotencyKey })`. */
  function charge(order: string, client: () => Stripe = () => stripe) {
    return payments.run(
      {
        key: order,
        scope: 'merchant-1',
        params: { amount: 1_500, currency: 'eur', metadata: { order } },
      },
      (ctx) => client().paymentIntents.create(ctx.params, { idempotencyKey: ctx.idempotencyKey }),
    );
  }

  async function stateOf(order: string) {
    return (await executor.inspect(payments.executorKeyOf(order, 'merchant-1'))).state;
  }

  it('does not cache an SDK timeout: the retry reaches the provider with the same Idempotency-Key and gets the one charge', async () => {
    // Prepare: the provider charges, then answers after the SDK has given up.
    provider.behave('o-timeout', 'slow-once');

    // Act
    const timeout = (await charge('o-timeout').catch((e: unknown) => e)) as StripeErrorFields;
    const stateAfterTimeout = await stateOf('o-timeout');
    const retried = await charge('o-timeout');

    // Assess: what stripe-node really throws on a timeout ...
    assert.equal(timeout.type, 'StripeConnectionError');
    assert.equal(timeout.name, 'Error');
    assert.equal(timeout.statusCode, undefined);
    assert.equal(timeout.detail?.code, 'ETIMEDOUT');
    // ... is not the order's outcome: nothing stored, the retry went to the provider.
    assert.equal(stateAfterTimeout, 'absent');
    assert.equal(retried.id, 'pi_o-timeout');
    assert.equal(provider.requests.get('o-timeout'), 2);
    assert.equal(provider.charges.get('o-timeout'), 1);
    assert.deepEqual(
      [...(provider.keysByOrder.get('o-timeout') ?? [])],
      [payments.idempotencyKeyOf('o-timeout', 'merchant-1')],
    );
    assert.equal(await stateOf('o-timeout'), 'completed');
  });

  it('does not cache an unreachable provider (connection refused): the retry charges once', async () => {
    // Prepare: the first attempt goes to a port nobody listens on.
    const closedPort = await freePort();
    let client = stripeAt(closedPort);

    // Act
    const refused = (await charge('o-refused', () => client).catch(
      (e: unknown) => e,
    )) as StripeErrorFields;
    const stateAfterRefusal = await stateOf('o-refused');
    client = stripe; // the provider is reachable again
    const retried = await charge('o-refused', () => client);

    // Assess
    assert.equal(refused.type, 'StripeConnectionError');
    assert.equal(refused.name, 'Error');
    assert.equal(refused.detail?.code, 'ECONNREFUSED');
    assert.equal(stateAfterRefusal, 'absent');
    assert.equal(retried.id, 'pi_o-refused');
    assert.equal(provider.requests.get('o-refused'), 1);
    assert.equal(provider.charges.get('o-refused'), 1);
  });

  it("does not cache the provider's 409 idempotency-key-in-use answer: the retry charges once", async () => {
    // Prepare: the provider is still busy with the key (another process's request, say).
    provider.behave('o-in-use', 'in-use-once');

    // Act
    const inUse = (await charge('o-in-use').catch((e: unknown) => e)) as StripeErrorFields;
    const stateAfterConflict = await stateOf('o-in-use');
    const retried = await charge('o-in-use');

    // Assess: stripe-node makes a 409 a StripeAPIError, whatever the body's `type`.
    assert.equal(inUse.type, 'StripeAPIError');
    assert.equal(inUse.statusCode, 409);
    assert.equal(inUse.code, 'idempotency_key_in_use');
    assert.equal(stateAfterConflict, 'absent');
    assert.equal(retried.id, 'pi_o-in-use');
    assert.equal(provider.requests.get('o-in-use'), 2);
    assert.equal(provider.charges.get('o-in-use'), 1);
    assert.equal(provider.keysByOrder.get('o-in-use')?.size, 1);
  });

  it('caches a decline (402 card_error) and replays it as StripeCardError without calling the provider', async () => {
    // Prepare
    provider.behave('o-declined', 'decline');

    // Act
    const first = await charge('o-declined').catch((e: unknown) => e);
    const stateAfterDecline = await stateOf('o-declined');
    const replayed = await charge('o-declined').catch((e: unknown) => e);

    // Assess
    assert.ok(first instanceof Stripe.errors.StripeCardError);
    assert.equal(stateAfterDecline, 'completed');
    assert.ok(replayed instanceof Stripe.errors.StripeCardError);
    assert.notEqual(replayed, first);
    assert.equal(replayed.type, 'StripeCardError');
    assert.equal(replayed.statusCode, 402);
    assert.equal(replayed.code, 'card_declined');
    assert.equal(replayed.decline_code, 'insufficient_funds');
    assert.equal(replayed.message, 'Your card has insufficient funds.');
    assert.equal(provider.requests.get('o-declined'), 1);
    assert.equal(provider.charges.get('o-declined') ?? 0, 0);
  });
});
