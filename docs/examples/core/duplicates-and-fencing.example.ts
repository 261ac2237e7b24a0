// Concurrent duplicates: wait (default) or fail fast with IDEMPOTENCY_IN_PROGRESS; the same
// key with another payload is IDEMPOTENCY_KEY_REUSED; fn hands a fencing token downstream.
import assert from 'node:assert/strict';
import { IdempotentExecutor, isIdempotencyError, MemoryStore } from 'idempotent-executor';

const executor = new IdempotentExecutor({ store: new MemoryStore(), namespace: 'example-dups' });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const running = executor.run(
  'ship:o-4',
  async (ctx) => {
    const token = await ctx.fencingToken(); // downstream writes refuse tokens older than the last seen
    await sleep(100);
    return { shipped: true, token };
  },
  { fingerprint: { address: 'Main St 1' } },
);
await sleep(10);

const impatient = await executor
  .run('ship:o-4', async () => ({ shipped: false, token: 0 }), { wait: false })
  .catch((error: unknown) => (isIdempotencyError(error) ? error.code : error));
const otherPayload = await executor
  .run('ship:o-4', async () => ({ shipped: false, token: 0 }), {
    fingerprint: { address: 'Elm St 2' },
  })
  .catch((error: unknown) => (isIdempotencyError(error) ? error.code : error));
const patient = await executor.run('ship:o-4', async () => ({ shipped: false, token: 0 }));

assert.equal(impatient, 'IDEMPOTENCY_IN_PROGRESS');
assert.equal(otherPayload, 'IDEMPOTENCY_KEY_REUSED');
assert.deepEqual(patient, await running);
assert.ok(patient.token > 0);
console.log('in progress, key reused, then replayed:', patient);
await executor.close();
