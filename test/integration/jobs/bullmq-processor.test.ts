// The BullMQ processor with real BullMQ workers on the shared Redis: a job that runs again after
// it succeeded replays its stored result, a new job reusing an old job's id does not; errors are
// not cached, so attempts retry; a job whose key is invalid fails at once; the lease lives as long
// as the work, and losing it (or BullMQ cancelling the job) aborts the work's signal.
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { idempotentProcessor, type JobRunContext } from '../../../src/adapters/jobs/index.js';
import { ErrorCode, IdempotentExecutor, isIdempotencyError } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace, waitUntil } from '../../helpers/redis.js';
import { gate, sleep } from '../support.js';
import { BullQueue, idOf } from './support.js';

interface Order {
  readonly orderId: string;
  readonly amount: number;
}

interface Receipt {
  readonly chargeId: string;
  readonly orderId: string;
}

class CardDeclinedError extends Error {
  override readonly name = 'CardDeclinedError';
  readonly code = 'card_declined';
}

describe('idempotentProcessor with BullMQ workers', () => {
  let redis: Redis;
  let namespace: string;
  let executors: IdempotentExecutor[];
  let queues: BullQueue[];

  const executor = () => {
    const created = new IdempotentExecutor({ redis, namespace, errorClasses: [CardDeclinedError] });
    executors.push(created);
    return created;
  };
  const bullQueue = () => {
    const created = new BullQueue(redis);
    queues.push(created);
    return created;
  };
  /** A work that counts its runs and returns a receipt no other run could return. */
  const charging = () => {
    const runs: string[] = [];
    const work = async (job: Job<Order>) => {
      runs.push(idOf(job));
      return { chargeId: `ch_${randomUUID()}`, orderId: job.data.orderId } satisfies Receipt;
    };
    return { runs, work };
  };

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('jobs');
    executors = [];
    queues = [];
  });
  afterEach(async () => {
    await Promise.all(queues.map((created) => created.remove()));
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('completes a job retried by hand after it succeeded with the stored result, without running the work again', async () => {
    // Prepare
    const queue = bullQueue();
    const { runs, work } = charging();
    const worker = queue.worker(idempotentProcessor(executor(), work));
    const completions: unknown[] = [];
    worker.on('completed', (_job, result) => completions.push(result));
    const job = await queue.queue.add('charge', { orderId: 'o-1', amount: 1_200 });
    const first = await queue.settled(idOf(job));
    assert.equal(await first.getState(), 'completed');
    const firstResult: unknown = first.returnvalue;

    // Act
    await first.retry('completed');
    await waitUntil(() => completions.length === 2, 30_000);
    const second = await queue.settled(idOf(job));

    // Assess
    assert.deepEqual(runs, [idOf(job)]);
    assert.deepEqual(completions[1], completions[0]);
    assert.deepEqual(second.returnvalue, firstResult);
  });

  it('completes two jobs enqueued under different ids with one business key with one result, running the work once', async () => {
    // Prepare
    const queue = bullQueue();
    const { runs, work } = charging();
    queue.worker(
      idempotentProcessor(executor(), work, { key: (job: Job<Order>) => job.data.orderId }),
    );

    // Act
    const first = await queue.queue.add('charge', { orderId: 'o-2', amount: 500 });
    const second = await queue.queue.add('charge', { orderId: 'o-2', amount: 500 });
    const [firstDone, secondDone] = await Promise.all([
      queue.settled(idOf(first)),
      queue.settled(idOf(second)),
    ]);

    // Assess
    assert.notEqual(idOf(first), idOf(second));
    assert.equal(runs.length, 1);
    assert.equal(await secondDone.getState(), 'completed');
    assert.deepEqual(secondDone.returnvalue, firstDone.returnvalue);
    assert.equal((firstDone.returnvalue as Receipt).orderId, 'o-2');
  });

  it('runs the work again on the next BullMQ attempt after it threw: errors are not cached by default', async () => {
    // Prepare
    const queue = bullQueue();
    const exec = executor();
    let runs = 0;
    const processor = idempotentProcessor(exec, async (job: Job<Order>) => {
      runs += 1;
      if (runs === 1) throw new Error('gateway timed out');
      return { chargeId: `ch_${runs}`, orderId: job.data.orderId };
    });
    queue.worker(processor);

    // Act
    const job = await queue.queue.add('charge', { orderId: 'o-3', amount: 900 }, { attempts: 3 });
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await done.getState(), 'completed');
    assert.equal(runs, 2);
    assert.equal(done.attemptsMade, 2);
    assert.deepEqual(done.returnvalue, { chargeId: 'ch_2', orderId: 'o-3' });
    assert.equal((await exec.inspect(processor.keyOf(done))).state, 'completed');
  });

  it('replays an error shouldCacheError keeps to every later attempt, running the work once', async () => {
    // Prepare
    const queue = bullQueue();
    let runs = 0;
    const processor = idempotentProcessor(
      executor(),
      async (_job: Job<Order>): Promise<Receipt> => {
        runs += 1;
        throw new CardDeclinedError('Your card was declined');
      },
      { shouldCacheError: (error) => error instanceof CardDeclinedError },
    );
    const failures: unknown[] = [];
    queue.worker(processor).on('failed', (_job, error) => failures.push(error));

    // Act
    const job = await queue.queue.add('charge', { orderId: 'o-4', amount: 900 }, { attempts: 3 });
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await done.getState(), 'failed');
    assert.equal(runs, 1);
    assert.equal(done.attemptsMade, 3);
    assert.equal(failures.length, 3);
    for (const failure of failures) {
      assert.ok(failure instanceof CardDeclinedError);
      assert.equal(failure.message, 'Your card was declined');
    }
  });

  it('renews the lease while the work runs: a duplicate job in another worker waits for the result instead of taking the key over', async () => {
    // Prepare: two workers with executors of their own (no in-process sharing), a lease far
    // shorter than the work.
    const queue = bullQueue();
    const leaseMs = 1_000;
    const workStarted = gate();
    const duplicateActive = gate();
    let runs = 0;
    const processor = (exec: IdempotentExecutor) =>
      idempotentProcessor(
        exec,
        async (job: Job<Order>, ctx: JobRunContext) => {
          runs += 1;
          workStarted.open();
          await duplicateActive.promise;
          await sleep(leaseMs * 3);
          assert.equal(ctx.signal.aborted, false);
          return { chargeId: `ch_${randomUUID()}`, orderId: job.data.orderId };
        },
        { key: (job) => job.data.orderId, leaseMs },
      );
    queue.worker(processor(executor()), { name: 'first' });
    const first = await queue.queue.add('charge', { orderId: 'o-5', amount: 100 });
    await workStarted.promise;
    const second = queue.worker(processor(executor()), { name: 'second' });
    second.on('active', () => duplicateActive.open());

    // Act
    const duplicate = await queue.queue.add('charge', { orderId: 'o-5', amount: 100 });
    const [firstDone, duplicateDone] = await Promise.all([
      queue.settled(idOf(first)),
      queue.settled(idOf(duplicate)),
    ]);

    // Assess
    assert.equal(runs, 1);
    assert.equal(firstDone.processedBy, 'first');
    assert.equal(duplicateDone.processedBy, 'second');
    assert.equal(await duplicateDone.getState(), 'completed');
    assert.deepEqual(duplicateDone.returnvalue, firstDone.returnvalue);
  });

  it('runs the work of a new job that reuses the id of a job from before queue.obliterate(), and completes it with its own result', async () => {
    // Prepare: job 1 runs and its result is stored; the queue is then obliterated, which
    // restarts BullMQ's id counter.
    const queue = bullQueue();
    const { runs, work } = charging();
    queue.worker(idempotentProcessor(executor(), work));
    const old = await queue.queue.add('charge', { orderId: 'o-old', amount: 100 });
    const oldDone = await queue.settled(idOf(old));
    await queue.queue.obliterate({ force: true });

    // Act
    const reused = await queue.queue.add('charge', { orderId: 'o-new', amount: 200 });
    const reusedDone = await queue.settled(idOf(reused));

    // Assess
    assert.equal(idOf(reused), idOf(old));
    assert.deepEqual(runs, [idOf(old), idOf(reused)]);
    assert.equal(await reusedDone.getState(), 'completed');
    assert.equal((reusedDone.returnvalue as Receipt).orderId, 'o-new');
    assert.notDeepEqual(reusedDone.returnvalue, oldDone.returnvalue);
  });

  it('replays the stored result to the next attempt of a job that failed after its work ran: the default key holds across attempts', async () => {
    // Prepare: the work's result is stored, then the first attempt fails on the way back to
    // BullMQ (as when a worker loses the job after the work).
    const queue = bullQueue();
    const { runs, work } = charging();
    const guarded = idempotentProcessor(executor(), work);
    const returned: unknown[] = [];
    queue.worker(async (job: Job<Order>, token?: string, signal?: AbortSignal) => {
      const receipt = await guarded(job, token, signal);
      returned.push(receipt);
      if (job.attemptsMade === 0) throw new Error('connection lost after the work');
      return receipt;
    });

    // Act
    const job = await queue.queue.add('charge', { orderId: 'o-11', amount: 700 }, { attempts: 2 });
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await done.getState(), 'completed');
    assert.equal(done.attemptsMade, 2);
    assert.deepEqual(runs, [idOf(job)]);
    assert.equal(returned.length, 2);
    assert.deepEqual(returned[1], returned[0]);
    assert.deepEqual(done.returnvalue, returned[0]);
  });

  it('fails a job whose key is missing, empty, not a string or not well-formed Unicode at once, with IDEMPOTENCY_INVALID_KEY in failedReason and no further attempts', async () => {
    // Prepare
    const queue = bullQueue();
    const { runs, work } = charging();
    const failures: unknown[] = [];
    queue
      .worker(idempotentProcessor(executor(), work, { key: (job: Job<Order>) => job.data.orderId }))
      .on('failed', (_job, error) => failures.push(error));
    const badOrderIds: unknown[] = [undefined, '', 42, 's\uD800'];

    // Act
    const jobs = await Promise.all(
      badOrderIds.map((orderId) =>
        queue.queue.add('charge', { orderId, amount: 1 } as unknown as Order, { attempts: 3 }),
      ),
    );
    const done = await Promise.all(jobs.map((job) => queue.settled(idOf(job))));

    // Assess
    assert.deepEqual(runs, []);
    for (const job of done) {
      assert.equal(await job.getState(), 'failed');
      assert.equal(job.attemptsMade, 1);
      assert.match(job.failedReason, /^IDEMPOTENCY_INVALID_KEY: Expected the job key to be /);
    }
    assert.equal(failures.length, badOrderIds.length);
    for (const failure of failures) {
      assert.ok(isIdempotencyError(failure));
      assert.equal(failure.code, ErrorCode.INVALID_KEY);
    }
  });

  it('aborts the work signal when the lease is lost, and fails the job with IDEMPOTENCY_LEASE_LOST', async () => {
    // Prepare
    const queue = bullQueue();
    const workStarted = gate();
    const reasons: unknown[] = [];
    queue.worker(
      idempotentProcessor(
        executor(),
        async (_job: Job<Order>, ctx: JobRunContext) => {
          workStarted.open();
          await aborted(ctx.signal);
          reasons.push(ctx.signal.reason);
          ctx.signal.throwIfAborted();
        },
        { leaseMs: 150 },
      ),
    );
    const job = await queue.queue.add('charge', { orderId: 'o-6', amount: 100 });
    await workStarted.promise;

    // Act: the lease vanishes under the running work (as after a Redis failover).
    await deleteNamespace(redis, namespace);
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await done.getState(), 'failed');
    assert.equal(reasons.length, 1);
    assert.equal((reasons[0] as { code?: unknown }).code, ErrorCode.LEASE_LOST);
    assert.match(done.failedReason, /lease on key .* was lost/);
  });

  it("aborts the work signal when BullMQ cancels the job, fails the job with the work's error and frees the key", async () => {
    // Prepare
    const queue = bullQueue();
    const exec = executor();
    const workStarted = gate();
    const reasons: unknown[] = [];
    const processor = idempotentProcessor(exec, async (_job: Job<Order>, ctx: JobRunContext) => {
      workStarted.open();
      await aborted(ctx.signal);
      reasons.push(ctx.signal.reason);
      throw new Error(`charge stopped: ${String(ctx.signal.reason)}`);
    });
    const worker = queue.worker(processor);
    const job = await queue.queue.add('charge', { orderId: 'o-7', amount: 100 });
    await workStarted.promise;

    // Act
    assert.equal(worker.cancelJob(idOf(job), 'cancelled by an operator'), true);
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await done.getState(), 'failed');
    assert.deepEqual(reasons, ['cancelled by an operator']);
    assert.equal(done.failedReason, 'charge stopped: cancelled by an operator');
    assert.deepEqual(await exec.inspect(processor.keyOf(done)), { state: 'absent' });
  });

  it('keys jobs by their queue: one job id in two queues runs the work in each', async () => {
    // Prepare
    const exec = executor();
    const { runs, work } = charging();
    const processor = idempotentProcessor(exec, work);
    const [east, west] = [bullQueue(), bullQueue()];
    east.worker(processor);
    west.worker(processor);

    // Act
    const inEast = await east.queue.add('charge', { orderId: 'o-8', amount: 1 }, { jobId: 'j-1' });
    const inWest = await west.queue.add('charge', { orderId: 'o-8', amount: 1 }, { jobId: 'j-1' });
    const [eastDone, westDone] = await Promise.all([
      east.settled(idOf(inEast)),
      west.settled(idOf(inWest)),
    ]);

    // Assess
    assert.equal(runs.length, 2);
    assert.notDeepEqual(eastDone.returnvalue, westDone.returnvalue);
    assert.equal(
      processor.keyOf(eastDone),
      `${east.prefix}:${east.name}:j-1:${eastDone.timestamp}`,
    );
    assert.equal(
      processor.keyOf(westDone),
      `${west.prefix}:${west.name}:j-1:${westDone.timestamp}`,
    );
  });

  it('shares results between queues given one scope, for jobs keyed by ids of their own', async () => {
    // Prepare: job ids chosen by the producer are business keys.
    const exec = executor();
    const { runs, work } = charging();
    const processor = idempotentProcessor(exec, work, {
      scope: 'charges',
      key: (job: Job<Order>) => idOf(job),
    });
    const [east, west] = [bullQueue(), bullQueue()];
    east.worker(processor);
    west.worker(processor);

    // Act
    const inEast = await east.queue.add('charge', { orderId: 'o-9', amount: 1 }, { jobId: 'j-1' });
    const eastDone = await east.settled(idOf(inEast));
    const inWest = await west.queue.add('charge', { orderId: 'o-9', amount: 1 }, { jobId: 'j-1' });
    const westDone = await west.settled(idOf(inWest));

    // Assess
    assert.equal(runs.length, 1);
    assert.deepEqual(westDone.returnvalue, eastDone.returnvalue);
    assert.equal(processor.keyOf(westDone), 'charges:j-1');
  });

  it('fails a job whose business key already has a result made from other data with IDEMPOTENCY_KEY_REUSED', async () => {
    // Prepare
    const queue = bullQueue();
    const { runs, work } = charging();
    queue.worker(
      idempotentProcessor(executor(), work, {
        key: (job: Job<Order>) => job.data.orderId,
        fingerprint: (job) => job.data,
      }),
    );
    const first = await queue.queue.add('charge', { orderId: 'o-10', amount: 100 });
    await queue.settled(idOf(first));

    // Act
    const reused = await queue.queue.add('charge', { orderId: 'o-10', amount: 999 });
    const done = await queue.settled(idOf(reused));

    // Assess
    assert.equal(runs.length, 1);
    assert.equal(await done.getState(), 'failed');
    assert.match(done.failedReason, /already used with a different fingerprint/);
  });
});

/** Resolves when `signal` aborts; a test that never aborts it fails on the job's settle wait. */
function aborted(signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) =>
    signal.addEventListener('abort', () => resolve(), { once: true }),
  );
}
