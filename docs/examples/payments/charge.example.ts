// One charge per order, with the provider's own idempotency key on every attempt.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import { PaymentGuard } from 'idempotent-executor/payments';
import { Redis } from 'ioredis';

class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
}

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({
  redis,
  namespace: `example-payments-${process.pid}`,
  errorClasses: [CardDeclinedError],
});
const payments = new PaymentGuard(executor);

// Stands in for a provider SDK call such as
// stripe.paymentIntents.create(params, { idempotencyKey: ctx.idempotencyKey }).
const providerKeys: string[] = [];
async function providerCharge(idempotencyKey: string, amount: number) {
  providerKeys.push(idempotencyKey);
  if (providerKeys.length === 1) throw Object.assign(new Error('gateway timeout'), { status: 504 });
  return { id: 'ch_1', amount };
}

const charge = () =>
  payments.run(
    { key: 'order-1001', scope: 'merchant-7', params: { amount: 2_500, currency: 'EUR' } },
    (ctx) => providerCharge(ctx.idempotencyKey, ctx.params.amount),
  );

await assert.rejects(charge(), /gateway timeout/); // transient: not cached
const [a, b] = await Promise.all([charge(), charge()]); // the retry, twice at once

assert.deepEqual(a, { id: 'ch_1', amount: 2_500 });
assert.deepEqual(b, a);
assert.equal(providerKeys.length, 2, 'the provider was called twice: the failure and one retry');
assert.equal(providerKeys[0], providerKeys[1], 'with the same downstream idempotency key');
console.log('charged once; downstream key', providerKeys[0]);

await executor.forget(payments.executorKeyOf('order-1001', 'merchant-7'));
await executor.close();
await redis.quit();
