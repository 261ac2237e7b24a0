// BullMQ: one charge per order, however often its job runs.
//
//   npm run build && npx tsx docs/examples/jobs/bullmq.example.ts
//
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379). Everything it writes lives under
// a random prefix and is removed at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Job, Queue, QueueEvents, Worker } from 'bullmq';
import { IdempotentExecutor } from 'idempotent-executor';
import { idempotentProcessor } from 'idempotent-executor/jobs';
import { Redis } from 'ioredis';

interface Order {
  readonly orderId: string;
  readonly amountCents: number;
}

interface Receipt {
  readonly chargeId: string;
  readonly orderId: string;
}

const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = randomBytes(4).toString('hex');
const prefix = `example-bull-${run}`;
const connection = { url: redisUrl };
const redis = new Redis(redisUrl);
const executor = new IdempotentExecutor({ redis, namespace: `example-jobs-${run}` });

// Stands in for the payment provider: counts the charges it made.
const charges: Receipt[] = [];
let gatewayUp = false;
async function charge(order: Order, signal: AbortSignal): Promise<Receipt> {
  signal.throwIfAborted();
  if (!gatewayUp) {
    gatewayUp = true;
    throw new Error('gateway timed out'); // not cached: BullMQ's next attempt charges again
  }
  const receipt = { chargeId: `ch_${charges.length + 1}`, orderId: order.orderId };
  charges.push(receipt);
  return receipt;
}

// The processor: keyed by the order id from the job's data, so two jobs for one order (enqueued
// twice under different job ids) charge once. The work's signal aborts if the lease is lost or
// BullMQ cancels the job.
const processor = idempotentProcessor(
  executor,
  (job: Job<Order, Receipt>, ctx) => charge(job.data, ctx.signal),
  {
    key: (job) => job.data.orderId,
    // Same order id with other data: fail the job (IDEMPOTENCY_KEY_REUSED) instead of replaying.
    fingerprint: (job) => job.data,
  },
);

const queue = new Queue<Order, Receipt>('charges', { connection, prefix });
const events = new QueueEvents('charges', { connection, prefix });
const worker = new Worker<Order, Receipt>('charges', processor, {
  connection,
  prefix,
  drainDelay: 1,
});

let first: Job<Order, Receipt> | undefined;
try {
  await events.waitUntilReady();
  const order: Order = { orderId: 'order-1042', amountCents: 12_900 };

  // 1. The first job fails once (gateway timeout) and BullMQ's second attempt charges.
  first = await queue.add('charge', order, { attempts: 3 });
  const receipt = await first.waitUntilFinished(events);
  assert.deepEqual(receipt, { chargeId: 'ch_1', orderId: 'order-1042' });

  // 2. The same order enqueued again, under another job id: the stored receipt, no new charge.
  const again = await queue.add('charge', order);
  assert.notEqual(again.id, first.id);
  assert.deepEqual(await again.waitUntilFinished(events), receipt);

  // 3. An operator retries the completed job by hand: still the one charge.
  const done = await queue.getJob(first.id as string);
  await done?.retry('completed');
  assert.deepEqual(await (done as Job<Order, Receipt>).waitUntilFinished(events), receipt);

  assert.equal(charges.length, 1);
  console.log(`3 jobs for ${order.orderId}, 1 charge: ${receipt.chargeId}`);
  console.log(`executor key: ${processor.keyOf(first)}`);

  // 4. A job without an order id can never succeed: it fails at once, its other attempts unused,
  //    with the error code in its failedReason, and nothing is charged.
  const broken = await queue.add('charge', { amountCents: 500 } as Order, { attempts: 3 });
  await assert.rejects(broken.waitUntilFinished(events), /^Error: IDEMPOTENCY_INVALID_KEY: /);
  const failed = await queue.getJob(broken.id as string);
  assert.equal(failed?.attemptsMade, 1);
  assert.equal(charges.length, 1);
  console.log(`a job without an order id: ${failed?.failedReason}`);
} finally {
  await worker.close();
  await queue.obliterate({ force: true });
  await Promise.all([queue.close(), events.close()]);
  // The receipt is kept for the executor's ttlMs (24 h); this example removes it at once.
  if (first !== undefined) await executor.forget(processor.keyOf(first));
  await executor.close();
  await redis.quit();
}
