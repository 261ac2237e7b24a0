// Compile-time checks of the jobs adapter against BullMQ's own types (checked by `tsc -p .`;
// never run).
import { type Job, type Processor, Worker } from 'bullmq';
import { expectTypeOf } from 'expect-type';
import {
  type IdempotentProcessor,
  idempotentProcessor,
  isUnrecoverable,
  type JobRunContext,
  MessageGuard,
} from '../../../src/adapters/jobs/index.js';
import type { IdempotencyError, IdempotentExecutor, RunContext } from '../../../src/index.js';

declare const executor: IdempotentExecutor;
interface Order {
  orderId: string;
  amount: number;
}
interface Receipt {
  chargeId: string;
}

// Handed straight to a Worker, the processor takes its job type from the Worker's generics.
new Worker<Order, Receipt>(
  'orders',
  idempotentProcessor(
    executor,
    async (job, ctx) => {
      expectTypeOf(job).toEqualTypeOf<Job<Order, Receipt, string>>();
      expectTypeOf(ctx).toEqualTypeOf<JobRunContext>();
      return { chargeId: `ch_${job.data.orderId}` };
    },
    { key: (job) => job.data.orderId, fingerprint: (job) => job.data },
  ),
  { connection: {} },
);

// Built apart, with the job type written on the work, it is a BullMQ Processor.
const processor = idempotentProcessor(executor, async (job: Job<Order>) => job.data.amount);
expectTypeOf(processor).toEqualTypeOf<IdempotentProcessor<Job<Order>, number>>();
expectTypeOf(processor).toMatchTypeOf<Processor<Order, number>>();
expectTypeOf(processor.keyOf).parameter(0).toEqualTypeOf<Job<Order>>();

// A work that returns synchronously still gives a processor that returns a promise.
expectTypeOf(
  idempotentProcessor(executor, (job: Job<Order>) => job.data.orderId),
).returns.toEqualTypeOf<Promise<string>>();

// The guard returns what the work returns, awaited; the work gets a RunContext.
const guard = new MessageGuard(executor, { scope: 'orders' });
expectTypeOf(guard.run('m-1', async (ctx) => ctx)).toEqualTypeOf<Promise<RunContext>>();
expectTypeOf(guard.run('m-1', () => 7)).toEqualTypeOf<Promise<number>>();
// @ts-expect-error the scope is required
new MessageGuard(executor, {});

// isUnrecoverable narrows what a consumer caught to the library's error, with its code.
declare const caught: unknown;
if (isUnrecoverable(caught)) expectTypeOf(caught).toEqualTypeOf<IdempotencyError>();
