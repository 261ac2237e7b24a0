// One client process of the payments storm: fires duplicate charge calls for every order
// through a PaymentGuard, retrying transient failures like a real client, and prints each
// final outcome as a JSON line.
import { Redis } from 'ioredis';
import { isTransientProviderError, PaymentGuard } from '../../../../src/adapters/payments/index.js';
import { IdempotentExecutor } from '../../../../src/index.js';
import { CardDeclinedError, chargeThroughProvider, ProviderHttpError } from '../client.js';

const [providerUrl = '', namespace = '', ordersText = '0', callsText = '1'] = process.argv.slice(2);
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({
  redis,
  namespace,
  errorClasses: [CardDeclinedError, ProviderHttpError],
  leaseMs: 2_000,
});
const payments = new PaymentGuard(executor);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function chargeWithRetries(order: string): Promise<Record<string, unknown>> {
  for (let attempt = 1; ; attempt++) {
    try {
      const charge = await payments.run(
        { key: order, scope: 'merchant-1', params: { order, amount: 1_500 } },
        (ctx) => chargeThroughProvider(providerUrl, ctx.idempotencyKey, ctx.params),
      );
      return { order, outcome: 'charged', charge };
    } catch (error) {
      if (error instanceof CardDeclinedError)
        return { order, outcome: 'declined', reason: error.declineCode };
      if (attempt >= 6 || !isTransientProviderError(error)) {
        return { order, outcome: 'failed', error: String(error) };
      }
      await sleep(50 * attempt);
    }
  }
}

const orders = Number(ordersText);
const calls: Promise<void>[] = [];
for (let i = 0; i < orders; i++) {
  for (let c = 0; c < Number(callsText); c++) {
    calls.push(
      sleep(Math.random() * 150)
        .then(() => chargeWithRetries(`order-${i}`))
        .then((result) => {
          process.stdout.write(`${JSON.stringify(result)}\n`);
        }),
    );
  }
}
await Promise.all(calls);
await executor.close();
await redis.quit();
