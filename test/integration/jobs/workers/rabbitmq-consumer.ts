// A RabbitMQ consumer in its own OS process, processing each message through a MessageGuard keyed
// by the message id, and settling it as docs/adapters/jobs.md shows: ack once the guard returned,
// otherwise nack, requeueing unless the error is unrecoverable (then RabbitMQ dead-letters it).
// Once ready it pushes per message `processed` (the guard returned: the work ran here, or its
// stored result was replayed) and `acked`, or `nacked` (with `requeued`), on the shared worker
// protocol.
//
// Modes, to let a test kill it at a chosen point:
//   ack             acknowledges each message once the guard returned
//   die-before-ack  never acknowledges: the test kills it between the work and the ack
import { randomUUID } from 'node:crypto';
import { connect } from 'amqplib';
import { Redis } from 'ioredis';
import { isUnrecoverable, MessageGuard } from '../../../../src/adapters/jobs/index.js';
import { IdempotentExecutor } from '../../../../src/index.js';
import { emit, serve, workerConfig } from '../../../helpers/worker/child.js';

export interface ConsumerConfig {
  readonly amqpUrl: string;
  readonly redisUrl: string;
  readonly namespace: string;
  readonly queue: string;
  readonly counterKey: string;
  readonly mode: 'ack' | 'die-before-ack';
}

export interface ConsumerResult {
  readonly pid: number;
  readonly nonce: string;
  readonly body: unknown;
}

interface Handled {
  /** The work ran in this delivery (false: its stored result was replayed). */
  readonly ran: boolean;
  readonly redelivered: boolean;
  readonly result: ConsumerResult;
}

type MessageEvent =
  | ({ readonly event: 'processed' } & Handled)
  | ({ readonly event: 'acked' } & Handled)
  | {
      readonly event: 'nacked';
      readonly requeued: boolean;
      readonly messageId: unknown;
      readonly message: string;
    };

/** What the consumer pushes, each with its pid. */
export type ConsumerEvent = MessageEvent & { readonly pid: number };

const config = workerConfig<ConsumerConfig>();
const print = (event: MessageEvent) => emit({ pid: process.pid, ...event });

const redis = new Redis(config.redisUrl);
const executor = new IdempotentExecutor({ redis, namespace: config.namespace });
const guard = new MessageGuard(executor, { scope: config.queue });

const connection = await connect(config.amqpUrl);
const channel = await connection.createChannel();
await channel.prefetch(1);
await channel.consume(config.queue, async (message) => {
  if (message === null) return;
  let ran = false;
  try {
    const result = await guard.run(message.properties.messageId as string, async () => {
      ran = true;
      // The side effect, counted across processes.
      await redis.incr(config.counterKey);
      return {
        pid: process.pid,
        nonce: randomUUID(),
        body: JSON.parse(message.content.toString()) as unknown,
      } satisfies ConsumerResult;
    });
    print({ event: 'processed', ran, redelivered: message.fields.redelivered, result });
    if (config.mode === 'die-before-ack') return;
    channel.ack(message);
    // basic.ack has no reply: a round trip on the same channel (frames are handled in order)
    // makes sure RabbitMQ has it before the line tells the test it may kill this process.
    await channel.checkQueue(config.queue);
    print({ event: 'acked', ran, redelivered: message.fields.redelivered, result });
  } catch (error) {
    channel.nack(message, false, !isUnrecoverable(error));
    print({
      event: 'nacked',
      requeued: !isUnrecoverable(error),
      messageId: message.properties.messageId as unknown,
      message: error instanceof Error ? error.message : String(error),
    });
  }
});
serve({});
