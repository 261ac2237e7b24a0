// BullMQ worker processes killed with SIGKILL while they hold a job: BullMQ's stall detection
// hands the job to another worker process, and the executor decides whether the work runs again.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../../helpers/redis.js';
import { WorkerProcess } from '../../helpers/worker/parent.js';
import type { NoRequests } from '../../helpers/worker/protocol.js';
import { executions } from '../support.js';
import { BullQueue, idOf, SETTLE_TIMEOUT_MS } from './support.js';
import type { BullWorkerConfig, BullWorkerEvent } from './workers/bullmq-worker.js';

const workerScript = new URL('./workers/bullmq-worker.ts', import.meta.url);

type Worker = WorkerProcess<NoRequests, BullWorkerEvent>;

// Short BullMQ timings so a killed worker's job is found stalled within seconds; the lease
// matches lockDuration, as the adapter's documentation advises.
const LOCK_DURATION_MS = 2_000;
const STALLED_INTERVAL_MS = 1_000;

describe('idempotentProcessor with BullMQ worker processes killed holding a job', () => {
  let redis: Redis;
  let namespace: string;
  let queue: BullQueue;
  let workers: Worker[];

  const startBullWorker = async (mode: BullWorkerConfig['mode']) => {
    const config: BullWorkerConfig = {
      redisUrl: REDIS_URL,
      namespace,
      prefix: queue.prefix,
      queueName: queue.name,
      counterKey: `${namespace}:side-effects`,
      mode,
      lockDuration: LOCK_DURATION_MS,
      stalledInterval: STALLED_INTERVAL_MS,
      leaseMs: LOCK_DURATION_MS,
    };
    const worker: Worker = new WorkerProcess(workerScript, config);
    workers.push(worker);
    await worker.ready(SETTLE_TIMEOUT_MS);
    return worker;
  };

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('jobs');
    queue = new BullQueue(redis);
    workers = [];
  });
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.kill('SIGKILL')));
    await queue.remove();
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('completes the job with the original result, without running the work again, when its worker is killed after the work and before BullMQ completed the job', async () => {
    // Prepare: the first worker stores the work's result, then hangs before returning to BullMQ.
    const first = await startBullWorker('hang-after-work');
    const job = await queue.queue.add('charge', { orderId: 'o-1' });
    const stored = await first.until('work-stored', SETTLE_TIMEOUT_MS);
    assert.equal(await queue.queue.getJobState(idOf(job)), 'active');

    // Act: kill it; a second worker finds the job stalled and runs it again.
    await first.kill('SIGKILL');
    const second = await startBullWorker('normal');
    const completed = await second.until('completed', SETTLE_TIMEOUT_MS);
    const done = await queue.settled(idOf(job));

    // Assess
    assert.equal(await executions(redis, `${namespace}:side-effects`), 1);
    assert.equal(completed.jobId, idOf(job));
    assert.deepEqual(completed.result, stored.result);
    assert.equal(await done.getState(), 'completed');
    assert.deepEqual(done.returnvalue, stored.result);
    assert.equal(stored.result.pid, first.pid);
    assert.equal(done.stalledCounter, 1);
  });

  it('runs the work again in another worker when its worker is killed mid-work, once the lease has expired', async () => {
    // Prepare: the first worker starts the work and never finishes it.
    const first = await startBullWorker('hang-in-work');
    const job = await queue.queue.add('charge', { orderId: 'o-2' });
    await first.until('work-started', SETTLE_TIMEOUT_MS);

    // Act
    await first.kill('SIGKILL');
    const second = await startBullWorker('normal');
    const completed = await second.until('completed', SETTLE_TIMEOUT_MS);
    const done = await queue.settled(idOf(job));

    // Assess: no result was stored, so the work ran again (a side effect that must happen once
    // even then has to be idempotent itself, e.g. keyed by the fencing token).
    assert.equal(await executions(redis, `${namespace}:side-effects`), 2);
    assert.equal(await done.getState(), 'completed');
    assert.equal(completed.result.pid, second.pid);
    assert.deepEqual(done.returnvalue, completed.result);
    assert.ok(completed.result.fencingToken >= 1);
  });
});
