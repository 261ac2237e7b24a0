// One client process of the payments storm: fires duplicate charge calls for every order
// through a PaymentGuard, retrying transient failures like a real client, pushes each final
// outcome as an event, and exits.
import { Redis } from 'ioredis';
import { isTransientProviderError, PaymentGuard } from '../../../../src/adapters/payments/index.js';
import { IdempotentExecutor } from '../../../../src/index.js';
import { emit, workerConfig } from '../../../helpers/worker/child.js';
import { CardDeclinedError, chargeThroughProvider, ProviderHttpError } from '../client.js';

export interface ChargeClientConfig {
  readonly providerUrl: string;
  readonly namespace: string;
  /** Orders `order-0` … `order-${orders - 1}`, each charged `calls` times concurrently. */
  readonly orders: number;
  readonly calls: number;
}

/** A charge call's final outcome, after its retries. */
export interface OutcomeEvent {
  readonly event: 'outcome';
  readonly order: string;
  readonly outcome: 'charged' | 'declined' | 'failed';
  readonly charge?: unknown;
  readonly reason?: string;
  readonly error?: string;
}

const { providerUrl, namespace, orders, calls: callsPerOrder } = workerConfig<ChargeClientConfig>();
const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const executor = new IdempotentExecutor({
  redis,
  namespace,
  errorClasses: [CardDeclinedError, ProviderHttpError],
  leaseMs: 2_000,
});
const payments = new PaymentGuard(executor);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function chargeWithRetries(order: string): Promise<OutcomeEvent> {
  for (let attempt = 1; ; attempt++) {
    try {
      const charge = await payments.run(
        { key: order, scope: 'merchant-1', params: { order, amount: 1_500 } },
        (ctx) => chargeThroughProvider(providerUrl, ctx.idempotencyKey, ctx.params),
      );
      return { event: 'outcome', order, outcome: 'charged', charge };
    } catch (error) {
      if (error instanceof CardDeclinedError)
        return { event: 'outcome', order, outcome: 'declined', reason: error.declineCode };
      if (attempt >= 6 || !isTransientProviderError(error)) {
        return { event: 'outcome', order, outcome: 'failed', error: String(error) };
      }
      await sleep(50 * attempt);
    }
  }
}

const calls: Promise<void>[] = [];
for (let i = 0; i < orders; i++) {
  for (let c = 0; c < callsPerOrder; c++) {
    calls.push(
      sleep(Math.random() * 150)
        .then(() => chargeWithRetries(`order-${i}`))
        .then(emit),
    );
  }
}
await Promise.all(calls);
await executor.close();
await redis.quit();
