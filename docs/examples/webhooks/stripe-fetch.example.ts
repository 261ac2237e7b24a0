// A Stripe webhook endpoint as a Fetch API handler: the guard checks the Stripe-Signature before
// it looks at the event id, a redelivered event is acknowledged with the stored outcome and not
// handled twice, and a forged delivery reusing that event id gets 401, not the stored result.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import {
  eventIds,
  verifiers,
  WebhookGuard,
  webhookFetchHandler,
} from 'idempotent-executor/webhooks';
import { Redis } from 'ioredis';
import Stripe from 'stripe';

const endpointSecret = 'whsec_example_endpoint_secret'; // from the Stripe dashboard
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace: `example-webhooks-${process.pid}` });
const guard = new WebhookGuard(executor, {
  source: 'stripe',
  verify: verifiers.stripe(endpointSecret), // HMAC over the raw body, 5-minute tolerance
  ttlMs: 3 * 24 * 3_600_000, // Stripe retries for up to 3 days
});

let fulfilled = 0;
const endpoint = webhookFetchHandler(guard, {
  eventId: eventIds.stripe, // the event's id, inside the signed body
  handle: async (event) => {
    const { type } = JSON.parse(Buffer.from(event.body).toString('utf8'));
    fulfilled++;
    return { fulfilled: event.id, type };
  },
});

// What Stripe sends, signed by Stripe's own library.
const payload = JSON.stringify({ id: 'evt_123', type: 'checkout.session.completed' });
const stripe = new Stripe('sk_test_example');
const delivery = (signature: string) =>
  new Request('http://localhost/webhooks/stripe', {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signature },
    body: payload,
  });
const signed = () =>
  delivery(stripe.webhooks.generateTestHeaderString({ payload, secret: endpointSecret }));

const first = await endpoint(signed());
const redelivered = await endpoint(signed());
const forged = await endpoint(
  delivery(stripe.webhooks.generateTestHeaderString({ payload, secret: 'whsec_guessed' })),
);

assert.equal(first.status, 200);
assert.equal((await first.json()).status, 'processed');
assert.equal(redelivered.status, 200);
assert.equal((await redelivered.json()).status, 'duplicate');
assert.equal(forged.status, 401); // never the stored result, never a look at the store
assert.equal(fulfilled, 1);
console.log('handled once, redelivery acknowledged, forgery refused');

await executor.forget(guard.executorKeyOf('evt_123'));
await executor.close();
await redis.quit();
