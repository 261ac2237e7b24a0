// Quick start: one charge per order, whatever the number of retries.
import assert from 'node:assert/strict';
import { IdempotentExecutor } from 'idempotent-executor';
import { Redis } from 'ioredis';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({ redis, namespace: `example-quick-${process.pid}` });

let charges = 0;
async function chargeOrder(orderId: string, amount: number) {
  return executor.run(
    `charge:${orderId}`,
    async () => {
      charges++; // the provider call goes here
      return { orderId, amount, chargeId: `ch_${orderId}` };
    },
    { fingerprint: { amount } },
  );
}

// A client retrying three times at once, then once more later.
const results = await Promise.all([
  chargeOrder('o-1', 1200),
  chargeOrder('o-1', 1200),
  chargeOrder('o-1', 1200),
]);
const later = await chargeOrder('o-1', 1200);

assert.equal(charges, 1);
for (const result of [...results, later])
  assert.deepEqual(result, { orderId: 'o-1', amount: 1200, chargeId: 'ch_o-1' });
console.log('charged once, replayed to every caller:', later);

await executor.forget('charge:o-1');
await executor.close();
await redis.quit();
