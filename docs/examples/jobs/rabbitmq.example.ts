// RabbitMQ (or any broker): a message redelivered after its consumer did the work and died
// before acknowledging it is not processed twice.
//
//   npm run build && npx tsx docs/examples/jobs/rabbitmq.example.ts
//
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379) and a RabbitMQ at AMQP_URL
// (default amqp://guest:guest@127.0.0.1:5672). Its queue and keys are removed at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { type Channel, type ConsumeMessage, connect } from 'amqplib';
import { IdempotentExecutor } from 'idempotent-executor';
import { MessageGuard } from 'idempotent-executor/jobs';
import { Redis } from 'ioredis';

interface Shipment {
  readonly orderId: string;
  readonly parcels: number;
}

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const amqp = await connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const run = randomBytes(4).toString('hex');
const queue = `example-shipments-${run}`;
const executor = new IdempotentExecutor({ redis, namespace: `example-jobs-${run}` });
// Message ids are unique per queue: the queue name is the scope of every key.
const guard = new MessageGuard(executor, { scope: queue });

// Stands in for the warehouse API: counts the labels it printed.
const labels: string[] = [];
async function printLabel(shipment: Shipment): Promise<string> {
  const label = `label-${labels.length + 1}-${shipment.orderId}`;
  labels.push(label);
  return label;
}

/** Starts a consumer on its own channel; `ack: false` plays a consumer that dies before acking. */
async function consume(
  ack: boolean,
): Promise<{ channel: Channel; handled: Promise<[string, ConsumeMessage]> }> {
  const channel = await amqp.createChannel();
  await channel.prefetch(1);
  const handled = new Promise<[string, ConsumeMessage]>((resolve, reject) => {
    void channel.consume(queue, async (message) => {
      if (message === null) return;
      try {
        // The message id the publisher set; fall back on a business id from the body if yours
        // does not set one.
        const label = await guard.run(message.properties.messageId as string, () =>
          printLabel(JSON.parse(message.content.toString()) as Shipment),
        );
        if (ack) channel.ack(message);
        resolve([label, message]);
      } catch (error) {
        // Not cached: requeue, and the next delivery runs the work again.
        channel.nack(message, false, true);
        reject(error);
      }
    });
  });
  return { channel, handled };
}

try {
  const setup = await amqp.createChannel();
  await setup.assertQueue(queue, { durable: false });
  const shipment: Shipment = { orderId: 'order-1042', parcels: 2 };
  setup.sendToQueue(queue, Buffer.from(JSON.stringify(shipment)), { messageId: 'ship-order-1042' });

  // 1. A consumer prints the label, then "dies" before its ack: closing its channel hands the
  //    unacknowledged message back to RabbitMQ.
  const doomed = await consume(false);
  const [printed] = await doomed.handled;
  await doomed.channel.close();

  // 2. RabbitMQ redelivers it to the next consumer: the stored label, no second print, and an ack.
  const survivor = await consume(true);
  const [replayed, redelivery] = await survivor.handled;
  assert.equal(redelivery.fields.redelivered, true);
  assert.equal(replayed, printed);
  assert.deepEqual(labels, ['label-1-order-1042']);
  await survivor.channel.close();

  // Acknowledged for good: nothing went back to the queue when the second channel closed.
  assert.equal((await setup.checkQueue(queue)).messageCount, 0);
  console.log(`2 deliveries of ship-order-1042, 1 label: ${printed}`);
} finally {
  const cleanup = await amqp.createChannel();
  await cleanup.deleteQueue(queue);
  await amqp.close();
  // The label is kept for the executor's ttlMs (24 h); this example removes it at once.
  await executor.forget(guard.keyOf('ship-order-1042'));
  await executor.close();
  await redis.quit();
}
