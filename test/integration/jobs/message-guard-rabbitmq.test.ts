// MessageGuard with a real RabbitMQ queue: a message redelivered after its consumer died between
// the work and the ack, or published twice under one message id, is processed once; a message
// whose work failed and that is requeued runs the work again; a message without a valid id is
// dead-lettered once, not requeued forever.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import {
  type Channel,
  type ChannelModel,
  type ConsumeMessage,
  connect as connectAmqp,
} from 'amqplib';
import type { Redis } from 'ioredis';
import { MessageGuard } from '../../../src/adapters/jobs/index.js';
import { IdempotentExecutor } from '../../../src/index.js';
import {
  connect,
  deleteNamespace,
  REDIS_URL,
  uniqueNamespace,
  waitUntil,
} from '../../helpers/redis.js';
import { WorkerProcess } from '../../helpers/worker/parent.js';
import type { NoRequests } from '../../helpers/worker/protocol.js';
import { executions } from '../support.js';
import { AMQP_URL, SETTLE_TIMEOUT_MS } from './support.js';
import type { ConsumerConfig, ConsumerEvent } from './workers/rabbitmq-consumer.js';

const consumerScript = new URL('./workers/rabbitmq-consumer.ts', import.meta.url);

type Consumer = WorkerProcess<NoRequests, ConsumerEvent>;
type Nacked = Extract<ConsumerEvent, { event: 'nacked' }>;

describe('MessageGuard with RabbitMQ', () => {
  let redis: Redis;
  let namespace: string;
  let amqp: ChannelModel;
  let channel: Channel;
  let queueName: string;
  let deadLetterQueue: string;
  let consumers: Consumer[];
  let executors: IdempotentExecutor[];

  const startConsumer = async (mode: ConsumerConfig['mode']) => {
    const config: ConsumerConfig = {
      amqpUrl: AMQP_URL,
      redisUrl: REDIS_URL,
      namespace,
      queue: queueName,
      counterKey: `${namespace}:side-effects`,
      mode,
    };
    const consumer: Consumer = new WorkerProcess(consumerScript, config);
    consumers.push(consumer);
    await consumer.ready(SETTLE_TIMEOUT_MS);
    return consumer;
  };
  const publish = (messageId: string | undefined, body: unknown) =>
    channel.sendToQueue(
      queueName,
      Buffer.from(JSON.stringify(body)),
      messageId === undefined ? {} : { messageId },
    );
  const guard = () => {
    const executor = new IdempotentExecutor({ redis, namespace });
    executors.push(executor);
    return new MessageGuard(executor, { scope: queueName });
  };

  beforeEach(async () => {
    redis = connect();
    namespace = uniqueNamespace('jobs');
    queueName = uniqueNamespace('orders');
    deadLetterQueue = `${queueName}.dead`;
    consumers = [];
    executors = [];
    amqp = await connectAmqp(AMQP_URL);
    channel = await amqp.createChannel();
    // A rejected message (nack without requeue) goes through the default exchange to the DLQ.
    await channel.assertQueue(deadLetterQueue, { durable: false });
    await channel.assertQueue(queueName, {
      durable: false,
      deadLetterExchange: '',
      deadLetterRoutingKey: deadLetterQueue,
    });
  });
  afterEach(async () => {
    await Promise.all(consumers.map((consumer) => consumer.kill('SIGKILL')));
    await channel.deleteQueue(queueName);
    await channel.deleteQueue(deadLetterQueue);
    await amqp.close();
    await Promise.all(executors.map((executor) => executor.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('acknowledges a message redelivered after its consumer died between the work and the ack, without running the work again', async () => {
    // Prepare: the first consumer does the work and dies before acknowledging.
    publish('order-1', { orderId: 'o-1', amount: 1_200 });
    const first = await startConsumer('die-before-ack');
    const worked = await first.until('processed', SETTLE_TIMEOUT_MS);

    // Act: RabbitMQ requeues the unacknowledged message and delivers it to a second consumer.
    await first.kill('SIGKILL');
    const second = await startConsumer('ack');
    const acked = await second.until('acked', SETTLE_TIMEOUT_MS);
    await second.kill('SIGKILL');

    // Assess
    assert.equal(await executions(redis, `${namespace}:side-effects`), 1);
    assert.deepEqual([worked.ran, worked.redelivered], [true, false]);
    assert.deepEqual([acked.ran, acked.redelivered], [false, true]);
    assert.deepEqual(acked.result, worked.result);
    assert.equal(acked.result.pid, first.pid);
    // Acknowledged for good: nothing came back to the queue when the second consumer died.
    assert.equal((await channel.checkQueue(queueName)).messageCount, 0);
  });

  it('runs the work once for a message published twice under one message id, and acknowledges both', async () => {
    // Prepare
    const messageGuard = guard();
    let runs = 0;
    const acked: unknown[] = [];
    await channel.prefetch(2);
    await channel.consume(queueName, async (message: ConsumerMessage) => {
      if (message === null) return;
      const result = await messageGuard.run(message.properties.messageId as string, async () => {
        runs += 1;
        return { chargeId: `ch_${runs}` };
      });
      channel.ack(message);
      acked.push(result);
    });

    // Act
    publish('order-2', { orderId: 'o-2' });
    publish('order-2', { orderId: 'o-2' });
    await waitUntil(() => acked.length === 2, SETTLE_TIMEOUT_MS);

    // Assess
    assert.equal(runs, 1);
    assert.deepEqual(acked, [{ chargeId: 'ch_1' }, { chargeId: 'ch_1' }]);
  });

  it('runs the work again for a message requeued after its work threw: errors are not cached by default', async () => {
    // Prepare
    const messageGuard = guard();
    let runs = 0;
    const outcomes: string[] = [];
    await channel.consume(queueName, async (message: ConsumerMessage) => {
      if (message === null) return;
      try {
        await messageGuard.run(message.properties.messageId as string, async () => {
          runs += 1;
          if (runs === 1) throw new Error('warehouse unavailable');
          return 'reserved';
        });
        channel.ack(message);
        outcomes.push(`acked${message.fields.redelivered ? ' redelivered' : ''}`);
      } catch (error) {
        channel.nack(message, false, true);
        outcomes.push(`nacked: ${(error as Error).message}`);
      }
    });

    // Act
    publish('order-3', { orderId: 'o-3' });
    await waitUntil(() => outcomes.length === 2, SETTLE_TIMEOUT_MS);

    // Assess
    assert.equal(runs, 2);
    assert.deepEqual(outcomes, ['nacked: warehouse unavailable', 'acked redelivered']);
  });

  it('dead-letters a message without a valid message id once, instead of requeueing it', async () => {
    // Prepare: two messages no delivery can process, then a good one behind them.
    publish(undefined, { orderId: 'o-4' });
    publish('', { orderId: 'o-5' });
    publish('order-6', { orderId: 'o-6' });

    // Act: the consumer handles the queue in order (prefetch 1). A requeued message would come
    // back ahead of the good one, again and again: stop reading after a bounded number of lines.
    const consumer = await startConsumer('ack');
    const events: ConsumerEvent[] = [];
    while (events.length < 10 && events.at(-1)?.event !== 'acked') {
      events.push(await consumer.next(SETTLE_TIMEOUT_MS));
    }

    // Assess
    const nacked = events.filter((line): line is Nacked => line.event === 'nacked');
    assert.equal(nacked.length, 2, JSON.stringify(events));
    for (const line of nacked) {
      assert.equal(line.requeued, false);
      assert.match(line.message, /^IDEMPOTENCY_INVALID_KEY: /);
    }
    assert.deepEqual(
      events.map((line) => line.event),
      ['nacked', 'nacked', 'processed', 'acked'],
    );
    assert.equal(await executions(redis, `${namespace}:side-effects`), 1);
    await waitUntil(
      async () => (await channel.checkQueue(deadLetterQueue)).messageCount >= 2,
      SETTLE_TIMEOUT_MS,
    );
    const dead = [await channel.get(deadLetterQueue), await channel.get(deadLetterQueue)];
    const bodies = dead.map((message) => {
      assert.ok(message !== false);
      const deaths = (message.properties.headers?.['x-death'] ?? []) as XDeath[];
      assert.deepEqual(
        deaths.map((death) => [death.count, death.reason]),
        [[1, 'rejected']],
      );
      return JSON.parse(message.content.toString()) as unknown;
    });
    assert.deepEqual(bodies, [{ orderId: 'o-4' }, { orderId: 'o-5' }]);
    assert.equal((await channel.checkQueue(deadLetterQueue)).messageCount, 0);
    assert.equal((await channel.checkQueue(queueName)).messageCount, 0);
  });
});

type ConsumerMessage = ConsumeMessage | null;

/** An entry of the `x-death` header RabbitMQ adds to a dead-lettered message. */
interface XDeath {
  readonly count: number;
  readonly reason: string;
}
