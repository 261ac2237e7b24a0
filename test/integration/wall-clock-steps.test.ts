// Lease validity is counted on a monotonic clock: a step of the wall clock (NTP, a resumed VM)
// while fn runs never makes the owner believe its lease is valid longer than the store does.
// Each test steps Date.now() back by an hour mid-execution, on the Redis store and on
// MemoryStore, with a store that stops answering for the lease so the owner must rely on its
// own count of the lease.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor, type Lease, MemoryStore, type Store } from '../../src/index.js';
import type { RedisConnection } from '../../src/store/redis/connection.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { connect, deleteNamespace, uniqueNamespace } from '../helpers/redis.js';
import { settledWithin } from './support.js';

const HOUR_MS = 3_600_000;
const LEASE_MS = 300;

/** `store`, whose leases' renewals and completions fail as if the store had gone away. */
function unanswering(store: Store): Store {
  const failing = () => Promise.reject(new Error('the store does not answer'));
  return new Proxy(store, {
    get(target, property, receiver) {
      if (property !== 'claim') return Reflect.get(target, property, receiver);
      return async (key: string, leaseMs: number) => {
        const claimed = await target.claim(key, leaseMs);
        if (claimed === null || claimed instanceof Uint8Array) return claimed;
        const lease: Lease = claimed;
        return new Proxy(lease, {
          get(leaseTarget, name, leaseReceiver) {
            if (name === 'extend' || name === 'complete') return failing;
            return Reflect.get(leaseTarget, name, leaseReceiver);
          },
        });
      };
    },
  });
}

/** Steps Date.now() back by an hour until `restore()` (what a wall-clock step looks like to Node). */
function stepWallClockBack(): { restore: () => void } {
  const realNow = Date.now;
  Date.now = () => realNow() - HOUR_MS;
  return { restore: () => (Date.now = realNow) };
}

for (const backend of ['redis', 'memory'] as const) {
  describe(`a wall-clock step during an execution (${backend} store)`, () => {
    let redis: Redis;
    let namespace: string;
    let store: Store;
    let executor: IdempotentExecutor;
    let wallClock: { restore: () => void } | undefined;

    beforeEach(() => {
      redis = connect();
      namespace = uniqueNamespace('wall-clock');
      store =
        backend === 'redis'
          ? new RedisStore({ redis: redis as RedisConnection, commandTimeoutMs: 1_000 })
          : new MemoryStore();
      executor = new IdempotentExecutor({
        store: unanswering(store),
        namespace,
        leaseMs: LEASE_MS,
      });
    });
    afterEach(async () => {
      wallClock?.restore();
      wallClock = undefined;
      await executor.close();
      await store.close();
      await deleteNamespace(redis, namespace);
      await redis.quit();
    });

    it('aborts ctx.signal once the lease it could not renew has run out, though the wall clock went back an hour', async () => {
      // Prepare
      let aborted: unknown;

      // Act
      const outcome = settledWithin(
        executor.run(
          'order-1',
          (ctx) =>
            new Promise<string>((resolve) => {
              wallClock = stepWallClockBack();
              // Ends fn anyway once the bound below has passed, so a failure does not hang.
              const giveUp = setTimeout(() => resolve('never aborted'), 5 * LEASE_MS + 2_500);
              ctx.signal.addEventListener('abort', () => {
                clearTimeout(giveUp);
                aborted = ctx.signal.reason;
                resolve('stopped');
              });
            }),
        ),
        5 * LEASE_MS + 2_000,
        'the execution',
      );

      // Assess
      await outcome.catch(() => undefined);
      assert.equal((aborted as { code?: unknown } | undefined)?.code, 'IDEMPOTENCY_LEASE_LOST');
    });

    it('stops retrying a completion the store does not take once the lease has run out, though the wall clock went back an hour', async () => {
      // Act: fn returns at once; every completion fails; the owner retries while its lease holds.
      const value = await settledWithin(
        executor.run('order-2', async () => {
          wallClock = stepWallClockBack();
          return 'receipt';
        }),
        5 * LEASE_MS + 2_000,
        'the execution',
      );

      // Assess: fn's value, after the owner gave up storing it (not an hour of retries).
      assert.equal(value, 'receipt');
    });
  });
}
