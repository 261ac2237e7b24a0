// A BullMQ worker in its own OS process, running jobs through idempotentProcessor. Once ready it
// pushes per job `work-started` (the work began), `work-stored` (the executor stored the work's
// result) and `completed` (BullMQ marked the job completed), on the shared worker protocol.
//
// Modes, to let a test kill it at a chosen point:
//   normal           runs jobs to completion
//   hang-after-work  stores the work's result, then never returns to BullMQ (the job stays active)
//   hang-in-work     starts the work, then never finishes it (the lease stays held while alive)
import { randomUUID } from 'node:crypto';
import { type Job, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { idempotentProcessor } from '../../../../src/adapters/jobs/index.js';
import { IdempotentExecutor } from '../../../../src/index.js';
import { emit, serve, workerConfig } from '../../../helpers/worker/child.js';

export interface BullWorkerConfig {
  readonly redisUrl: string;
  readonly namespace: string;
  readonly prefix: string;
  readonly queueName: string;
  readonly counterKey: string;
  readonly mode: 'normal' | 'hang-after-work' | 'hang-in-work';
  readonly lockDuration: number;
  readonly stalledInterval: number;
  readonly leaseMs: number;
}

export interface WorkResult {
  readonly pid: number;
  readonly nonce: string;
  readonly orderId: string;
  readonly fencingToken: number;
}

type JobEvent =
  | { readonly event: 'work-started'; readonly jobId: string | undefined }
  | {
      readonly event: 'work-stored';
      readonly jobId: string | undefined;
      readonly result: WorkResult;
    }
  | { readonly event: 'completed'; readonly jobId: string | undefined; readonly result: WorkResult }
  | { readonly event: 'error'; readonly message: string };

/** What the worker pushes, each with its pid. */
export type BullWorkerEvent = JobEvent & { readonly pid: number };

const config = workerConfig<BullWorkerConfig>();
const print = (event: JobEvent) => emit({ pid: process.pid, ...event });
const never = () => new Promise<never>(() => {});

const redis = new Redis(config.redisUrl);
const executor = new IdempotentExecutor({ redis, namespace: config.namespace });

const guarded = idempotentProcessor(
  executor,
  async (job: Job<{ orderId: string }>, ctx): Promise<WorkResult> => {
    // The side effect, counted across processes.
    await redis.incr(config.counterKey);
    print({ event: 'work-started', jobId: job.id });
    if (config.mode === 'hang-in-work') return never();
    return {
      pid: process.pid,
      nonce: randomUUID(),
      orderId: job.data.orderId,
      fencingToken: await ctx.fencingToken(),
    };
  },
  { leaseMs: config.leaseMs },
);

const worker = new Worker<{ orderId: string }, WorkResult>(
  config.queueName,
  async (job, token, signal) => {
    const result = await guarded(job, token, signal);
    print({ event: 'work-stored', jobId: job.id, result });
    if (config.mode === 'hang-after-work') return never();
    return result;
  },
  {
    connection: { url: config.redisUrl },
    prefix: config.prefix,
    lockDuration: config.lockDuration,
    stalledInterval: config.stalledInterval,
    drainDelay: 1,
  },
);
worker.on('completed', (job, result) => print({ event: 'completed', jobId: job.id, result }));
worker.on('error', (error) => print({ event: 'error', message: error.message }));
await worker.waitUntilReady();
serve({});
