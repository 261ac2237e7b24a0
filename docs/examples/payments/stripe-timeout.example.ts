// The real stripe-node SDK, wrapped as docs/adapters/payments.md shows, against a stand-in for
// Stripe on loopback that charges, then answers after the SDK's timeout: the timeout is not the
// order's outcome, and the retry gets the one charge under the same Idempotency-Key.
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IdempotentExecutor } from 'idempotent-executor';
import { PaymentGuard } from 'idempotent-executor/payments';
import { Redis } from 'ioredis';
import Stripe from 'stripe';

// A stand-in for api.stripe.com: remembers the response of each Idempotency-Key, as Stripe does,
// and is slow to answer the first request.
const charges: string[] = [];
const answers = new Map<string, string>();
const provider = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    const key = String(req.headers['idempotency-key']);
    let answer = answers.get(key);
    const first = answer === undefined;
    if (answer === undefined) {
      charges.push(key);
      answer = JSON.stringify({ id: `pi_${charges.length}`, object: 'payment_intent' });
      answers.set(key, answer);
    }
    const body = answer;
    setTimeout(
      () => {
        if (res.destroyed) return;
        res.writeHead(200, { 'content-type': 'application/json' }).end(body);
      },
      first ? 500 : 0,
    );
  });
});
await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
const stripe = new Stripe('sk_test_example', {
  host: '127.0.0.1',
  port: (provider.address() as AddressInfo).port,
  protocol: 'http',
  timeout: 200,
  maxNetworkRetries: 0,
});

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({
  redis,
  namespace: `example-payments-stripe-${process.pid}`,
  errorClasses: [Stripe.errors.StripeCardError],
});
const payments = new PaymentGuard(executor);

const charge = () =>
  payments.run(
    { key: 'order-1001', scope: 'merchant-7', params: { amount: 2_500, currency: 'eur' } },
    (ctx) => stripe.paymentIntents.create(ctx.params, { idempotencyKey: ctx.idempotencyKey }),
  );

// The SDK gives up after 200 ms: a StripeConnectionError (its `name` is plain 'Error').
await assert.rejects(charge(), { type: 'StripeConnectionError' });
const key = payments.executorKeyOf('order-1001', 'merchant-7');
assert.equal((await executor.inspect(key)).state, 'absent', 'the timeout was not stored');

const intent = await charge(); // the retry: Stripe answers it from the first attempt's charge
assert.equal(intent.id, 'pi_1');
assert.equal(charges.length, 1, 'charged once');
console.log(
  'timeout not cached; retry got',
  intent.id,
  'under',
  payments.idempotencyKeyOf('order-1001', 'merchant-7'),
);

await executor.forget(key);
await executor.close();
await redis.quit();
provider.closeAllConnections();
provider.close();
