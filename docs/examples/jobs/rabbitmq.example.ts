// RabbitMQ (or any broker): a message redelivered after its consumer did the work and died
// before acknowledging it is not processed twice; a message without an id is dead-lettered once
// instead of being requeued forever.
//
//   npm run build && npx tsx docs/examples/jobs/rabbitmq.example.ts
//
// Needs a Redis at REDIS_URL (default redis://127.0.0.1:6379) and a RabbitMQ at AMQP_URL
// (default amqp://guest:guest@127.0.0.1:5672). Its queues and keys are removed at the end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Channel, type ConsumeMessage, connect } from 'amqplib';
import { IdempotentExecutor } from 'idempotent-executor';
import { isUnrecoverable, MessageGuard } from 'idempotent-executor/jobs';
import { Redis } from 'ioredis';

interface Shipment {
  readonly orderId: string;
  readonly parcels: number;
}

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379');
const amqp = await connect(process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672');
const run = randomBytes(4).toString('hex');
const queue = `example-shipments-${run}`;
const deadLetters = `${queue}.dead`;
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
        // Not cached: requeue, and the next delivery runs the work again. A message with no
        // valid id can never succeed: reject it without requeueing, RabbitMQ dead-letters it.
        channel.nack(message, false, !isUnrecoverable(error));
        reject(error);
      }
    });
  });
  return { channel, handled };
}

try {
  const setup = await amqp.createChannel();
  // Rejected messages go to a dead-letter queue (through the default exchange, by its name).
  await setup.assertQueue(deadLetters, { durable: false });
  await setup.assertQueue(queue, {
    durable: false,
    deadLetterExchange: '',
    deadLetterRoutingKey: deadLetters,
  });
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

  // 3. A publisher forgets the message id: no delivery could ever be processed, so the consumer
  //    rejects it without requeueing and it lands in the dead-letter queue, once.
  setup.sendToQueue(queue, Buffer.from(JSON.stringify({ orderId: 'order-1043', parcels: 1 })));
  const strict = await consume(true);
  const refused = await strict.handled.then(
    () => assert.fail('a message without an id was processed'),
    (error: unknown) => error,
  );
  assert.equal(isUnrecoverable(refused), true);
  assert.equal((refused as { code?: unknown }).code, 'IDEMPOTENCY_INVALID_KEY');
  await strict.channel.close();
  // Dead-lettering runs inside RabbitMQ, after the reject: look for the message for up to 5 s.
  let dead = await setup.get(deadLetters);
  for (let tries = 0; dead === false && tries < 100; tries++) {
    await sleep(50);
    dead = await setup.get(deadLetters);
  }
  assert.ok(dead !== false, 'the message is in the dead-letter queue');
  assert.equal(JSON.parse(dead.content.toString()).orderId, 'order-1043');
  assert.equal((await setup.checkQueue(queue)).messageCount, 0);
  assert.deepEqual(labels, ['label-1-order-1042']);
  console.log(`a message without an id: dead-lettered (${(refused as Error).message})`);
} finally {
  const cleanup = await amqp.createChannel();
  await cleanup.deleteQueue(queue);
  await cleanup.deleteQueue(deadLetters);
  await amqp.close();
  // The label is kept for the executor's ttlMs (24 h); this example removes it at once.
  await executor.forget(guard.keyOf('ship-order-1042'));
  await executor.close();
  await redis.quit();
}
