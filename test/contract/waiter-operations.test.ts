// A waiter must not poll: while the owner keeps renewing its lease, the waiter's store
// operations stay the same however long it waits (it learns of renewals by pub/sub).
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { IdempotentExecutor, MemoryStore, type Store } from '../../src/index.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { connect, deleteNamespace, uniqueNamespace } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Counts every operation the executor asks of `store`. */
function counting(store: Store): { store: Store; operations: () => number } {
  let operations = 0;
  const counted = new Proxy(store, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        operations++;
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { store: counted, operations: () => operations };
}

const redis = connect();
after(() => redis.quit());

for (const [name, makeStores] of [
  [
    'MemoryStore',
    () => {
      const shared = new MemoryStore();
      return { owner: shared, waiter: shared, cleanUp: async () => {} };
    },
  ],
  [
    'Redis',
    () => ({
      owner: new RedisStore({ redis, commandTimeoutMs: 2_000 }),
      waiter: new RedisStore({ redis, commandTimeoutMs: 2_000 }),
      cleanUp: async () => {},
    }),
  ],
] as const) {
  describe(`a waiter on ${name}`, () => {
    it('sends no store operation while the owner renews, however long it waits', async () => {
      const namespace = uniqueNamespace('waiter-ops');
      const stores = makeStores();
      const counted = counting(stores.waiter);
      const owner = new IdempotentExecutor({ store: stores.owner, namespace, leaseMs: 150 });
      const waiter = new IdempotentExecutor({ store: counted.store, namespace, leaseMs: 150 });
      const running = owner.run('slow', async () => {
        await sleep(1_500);
        return 'done';
      });
      await sleep(50);

      const waited = waiter.run('slow', async () => 'waiter ran');
      await sleep(300);
      const early = counted.operations();
      await sleep(900); // six more renewals of the owner's lease
      const late = counted.operations();

      assert.equal(await waited, 'done');
      assert.equal(await running, 'done');
      assert.equal(late, early, `operations grew from ${early} to ${late} during the wait`);
      assert.ok(early <= 5, `a waiter should need a handful of operations, used ${early}`);
      await owner.close();
      await waiter.close();
      await Promise.all([stores.owner.close(), stores.waiter.close()]);
      await deleteNamespace(redis, namespace);
    });
  });
}
