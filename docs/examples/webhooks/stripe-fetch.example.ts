// A Stripe-style webhook endpoint as a Fetch API handler: a redelivered event is acknowledged
// with the stored outcome and not handled twice.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import { eventIds, WebhookGuard, webhookFetchHandler } from 'idempotent-executor/webhooks';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace: `example-webhooks-${process.pid}` });
const guard = new WebhookGuard(executor, { source: 'stripe' });

let fulfilled = 0;
const endpoint = webhookFetchHandler(guard, {
  eventId: eventIds.stripe,
  handle: async (event) => {
    // Verify the signature over event.body (the raw bytes) here, then act once.
    fulfilled++;
    return { fulfilled: event.id };
  },
});

const delivery = () =>
  new Request('http://localhost/webhooks/stripe', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ id: 'evt_123', type: 'checkout.session.completed' }),
  });

const first = await endpoint(delivery());
const redelivered = await endpoint(delivery());

assert.equal(first.status, 200);
assert.equal(redelivered.status, 200);
assert.equal((await redelivered.json()).status, 'duplicate');
assert.equal(fulfilled, 1);
console.log('handled once, redelivery acknowledged');

await executor.forget(guard.executorKeyOf('evt_123'));
await executor.close();
await redis.quit();
