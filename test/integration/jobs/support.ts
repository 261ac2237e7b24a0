// What the jobs adapter tests share: a BullMQ queue under a prefix of its own, a RabbitMQ queue
// of its own, both removed after the test.
import { type Job, type Processor, Queue, Worker, type WorkerOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { deleteNamespace, REDIS_URL, uniqueNamespace, waitUntil } from '../../helpers/redis.js';

/** The RabbitMQ the tests use; override with AMQP_URL. */
export const AMQP_URL = process.env.AMQP_URL ?? 'amqp://guest:guest@127.0.0.1:5672';

/** How long a test waits for a job or a message to settle before it fails (a hang, not a timing). */
export const SETTLE_TIMEOUT_MS = 60_000;

/**
 * A BullMQ queue under a unique prefix, with the workers a test starts in this process. `remove()`
 * closes the workers, obliterates the queue and deletes whatever is left under the prefix.
 */
export class BullQueue {
  readonly prefix = uniqueNamespace('bull');
  readonly queue: Queue;
  private readonly workers: { close(force: boolean): Promise<void> }[] = [];

  constructor(
    private readonly redis: Redis,
    readonly name = uniqueNamespace('orders'),
  ) {
    this.queue = new Queue(name, { connection: { url: REDIS_URL }, prefix: this.prefix });
  }

  /** A worker on this queue; `drainDelay: 1` keeps its close from waiting on a 5 s poll. */
  worker<DataType, ResultType>(
    processor: Processor<DataType, ResultType>,
    options: Partial<WorkerOptions> = {},
  ): Worker<DataType, ResultType> {
    const worker = new Worker<DataType, ResultType>(this.name, processor, {
      connection: { url: REDIS_URL },
      prefix: this.prefix,
      drainDelay: 1,
      ...options,
    });
    // A failed lock renewal during a test's clean-up is no failure of the test.
    worker.on('error', () => {});
    this.workers.push(worker);
    return worker;
  }

  /** The job once it is completed or failed for good (retries are over). */
  async settled(jobId: string, timeoutMs = SETTLE_TIMEOUT_MS): Promise<Job> {
    let settled: Job | undefined;
    await waitUntil(
      async () => {
        const state = await this.queue.getJobState(jobId);
        if (state !== 'completed' && state !== 'failed') return false;
        settled = await this.queue.getJob(jobId);
        return settled !== undefined;
      },
      timeoutMs,
      50,
    );
    return settled as Job;
  }

  async remove(): Promise<void> {
    // Forced: a test may leave a job hanging in its processor on purpose.
    await Promise.all(this.workers.map((worker) => worker.close(true)));
    await this.queue.obliterate({ force: true });
    await this.queue.close();
    await deleteNamespace(this.redis, this.prefix);
  }
}

/** The id BullMQ gave a job (always set on a job `queue.add()` returned). */
export function idOf(job: Job): string {
  if (job.id === undefined) throw new Error('BullMQ returned a job without an id');
  return job.id;
}
