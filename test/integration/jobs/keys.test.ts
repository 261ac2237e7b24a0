// Keys of the jobs adapter against the shared Redis: the default job key, and ids, keys and queue
// names that are not well-formed Unicode refused as unrecoverable instead of colliding (UTF-8 would
// turn "s\uD800", "s\uDC00" and "s\uFFFD" into one Redis key).
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import {
  idempotentProcessor,
  isUnrecoverable,
  MessageGuard,
  type ProcessedJob,
} from '../../../src/adapters/jobs/index.js';
import { ErrorCode, IdempotentExecutor, isIdempotencyError } from '../../../src/index.js';
import { connect, deleteNamespace, uniqueNamespace } from '../../helpers/redis.js';
import { rejectionOf } from '../support.js';

interface FakeJob extends ProcessedJob {
  readonly data: { readonly orderId: string };
}

const LONE_HIGH = 's\uD800';
const LONE_LOW = 's\uDC00';
const REPLACEMENT = 's\uFFFD';

function job(fields: Partial<FakeJob> = {}): FakeJob {
  return {
    id: '1',
    timestamp: 1_700_000_000_000,
    queueQualifiedName: 'bull:orders',
    data: { orderId: 'o-1' },
    ...fields,
  };
}

/** Asserts that `error` is the adapter's unrecoverable IDEMPOTENCY_INVALID_KEY naming `what`. */
function assertUnrecoverableKey(error: unknown, what: RegExp): void {
  assert.ok(isIdempotencyError(error), `expected an IdempotencyError, got ${String(error)}`);
  assert.equal(error.code, ErrorCode.INVALID_KEY);
  assert.equal(isUnrecoverable(error), true);
  assert.equal(error.name, 'UnrecoverableError');
  assert.match(error.message, what);
}

describe('jobs adapter keys', () => {
  let redis: Redis;
  let namespace: string;
  let executor: IdempotentExecutor;

  beforeEach(() => {
    redis = connect();
    namespace = uniqueNamespace('jobs');
    executor = new IdempotentExecutor({ redis, namespace });
  });
  afterEach(async () => {
    await executor.close();
    await deleteNamespace(redis, namespace);
    await redis.quit();
  });

  it('keys a job by its queue, its id and its creation time by default, escaping the id', () => {
    // Prepare
    const processor = idempotentProcessor(executor, async (_job: FakeJob) => 'done');

    // Act
    const plain = processor.keyOf(job({ id: '42' }));
    const withColon = processor.keyOf(job({ id: 'order:7' }));

    // Assess
    assert.equal(plain, 'bull:orders:42:1700000000000');
    assert.equal(withColon, 'bull:orders:order%3A7:1700000000000');
  });

  it('refuses message ids that are not well-formed Unicode, so "s\\uD800", "s\\uDC00" and "s\\uFFFD" never share a key', async () => {
    // Prepare
    const guard = new MessageGuard(executor, { scope: 'orders' });
    const ran: string[] = [];
    const work = (id: string) => () => {
      ran.push(id);
      return id;
    };

    // Act
    const replacement = await guard.run(REPLACEMENT, work(REPLACEMENT));
    const high = await rejectionOf(guard.run(LONE_HIGH, work(LONE_HIGH)));
    const low = await rejectionOf(guard.run(LONE_LOW, work(LONE_LOW)));

    // Assess
    assert.equal(replacement, REPLACEMENT);
    assert.deepEqual(ran, [REPLACEMENT]);
    assertUnrecoverableKey(high, /the message id to be well-formed Unicode/);
    assertUnrecoverableKey(low, /the message id to be well-formed Unicode/);
    assert.throws(() => guard.keyOf(LONE_HIGH), /well-formed Unicode/);
  });

  it('refuses job keys and queue names that are not well-formed Unicode, so they never share a key', async () => {
    // Prepare
    const ran: string[] = [];
    const byOrder = idempotentProcessor(
      executor,
      async (fake: FakeJob) => {
        ran.push(fake.data.orderId);
        return fake.data.orderId;
      },
      { key: (fake) => fake.data.orderId },
    );
    const byId = idempotentProcessor(executor, async (fake: FakeJob) => fake.id);

    // Act
    const replacement = await byOrder(job({ data: { orderId: REPLACEMENT } }));
    const high = await rejectionOf(byOrder(job({ data: { orderId: LONE_HIGH } })));
    const low = await rejectionOf(byOrder(job({ data: { orderId: LONE_LOW } })));
    const queue = await rejectionOf(byId(job({ queueQualifiedName: `bull:${LONE_LOW}` })));

    // Assess
    assert.equal(replacement, REPLACEMENT);
    assert.deepEqual(ran, [REPLACEMENT]);
    assertUnrecoverableKey(high, /the job key to be well-formed Unicode/);
    assertUnrecoverableKey(low, /the job key to be well-formed Unicode/);
    assertUnrecoverableKey(queue, /the queue name to be well-formed Unicode/);
  });

  it('refuses a job without an id or creation time as unrecoverable when it is keyed by default', async () => {
    // Prepare
    let runs = 0;
    const processor = idempotentProcessor(executor, async (_job: FakeJob) => {
      runs += 1;
    });

    // Act
    const noId = await rejectionOf(processor(job({ id: undefined })));
    const noTimestamp = await rejectionOf(processor(job({ timestamp: undefined })));

    // Assess
    assert.equal(runs, 0);
    assertUnrecoverableKey(noId, /the job id to be a non-empty string/);
    assertUnrecoverableKey(noTimestamp, /the job's timestamp to be a number/);
  });
});
