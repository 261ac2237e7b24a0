// The completion by `SET … IFEQ` against a real Valkey 8.1 (built by test/tools/valkey.sh), and
// the script against the Redis 7.0 this machine has: the store detects which once per
// connection; a stale owner's refused SET never announces an outcome to waiters.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { channelOf, recordKeyOf } from '../../src/store/redis/key-layout.js';
import { hasSetIfeq } from '../../src/store/redis/redis-lease.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import type { Lease } from '../../src/store/store.js';
import {
  commandStats,
  OwnRedisServer,
  statsDelta,
  uniqueNamespace,
  waitUntil,
} from '../helpers/redis.js';
import { startOwnValkeyServer } from '../helpers/valkey.js';

function asLease(claimed: Lease | Uint8Array | null): Lease {
  assert.ok(claimed !== null && !(claimed instanceof Uint8Array), 'expected a lease');
  return claimed;
}

describe('completion mode detection', () => {
  it('reads SET IFEQ support from INFO server', () => {
    assert.equal(hasSetIfeq('# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.1.1\r\n'), true);
    assert.equal(hasSetIfeq('# Server\r\nredis_version:7.2.4\r\nvalkey_version:8.0.1\r\n'), false);
    assert.equal(hasSetIfeq('# Server\r\nredis_version:7.0.15\r\n'), false);
    assert.equal(hasSetIfeq('# Server\r\nredis_version:8.4.0\r\n'), true);
    assert.equal(hasSetIfeq('# Server\r\nredis_version:8.2.1\r\n'), false);
  });
});

for (const target of ['valkey 8.1', 'redis 7.0'] as const) {
  describe(`completion on ${target}`, () => {
    let server: OwnRedisServer;
    let admin: Redis;
    const expected = target === 'valkey 8.1' ? 'ifeq' : 'script';

    before(async () => {
      server =
        target === 'valkey 8.1' ? await startOwnValkeyServer() : await OwnRedisServer.start();
      admin = new Redis(server.url);
    });
    after(async () => {
      admin.disconnect();
      await server.stop();
    });

    async function openStore(): Promise<{ store: RedisStore; client: Redis }> {
      const client = new Redis(server.url);
      const store = new RedisStore({ redis: client, commandTimeoutMs: 2_000 });
      // The first completion on a connection finds out whether the server has IFEQ.
      const warmUp = recordKeyOf(uniqueNamespace('ifeq-probe'), 'probe');
      assert.equal(
        await asLease(await store.claim(warmUp, 5_000)).complete(Buffer.from([1]), 1_000),
        true,
      );
      assert.equal(store.completionMode, expected);
      return { store, client };
    }

    it(`completes with ${expected === 'ifeq' ? 'SET IFEQ, no script' : 'the complete script'}`, async () => {
      // Prepare
      const { store, client } = await openStore();
      const key = recordKeyOf(uniqueNamespace('ifeq'), 'order-1');
      try {
        const lease = asLease(await store.claim(key, 5_000));
        const before = await commandStats(admin);

        // Act
        const stored = await lease.complete(Buffer.from([1, 9, 9]), 60_000);

        // Assess
        const delta = statsDelta(before, await commandStats(admin));
        assert.equal(stored, true);
        assert.deepEqual(await admin.getBuffer(key), Buffer.from([1, 9, 9]));
        if (expected === 'ifeq') {
          assert.equal(delta.evalsha, undefined);
          assert.equal(delta.set, 1);
          await waitUntil(async () => (await commandStats(admin)).publish !== undefined, 2_000);
        } else {
          // The script's own SET counts in commandstats too.
          assert.equal(delta.evalsha, 1);
        }
      } finally {
        await store.close();
        client.disconnect();
      }
    });

    it('refuses a stale owner and announces nothing to waiters', async () => {
      // Prepare: the lease expires and another owner takes the key.
      const { store, client } = await openStore();
      const key = recordKeyOf(uniqueNamespace('ifeq'), 'order-2');
      const listener = new Redis(server.url);
      const messages: Buffer[] = [];
      try {
        listener.on('messageBuffer', (_channel: Buffer, message: Buffer) => messages.push(message));
        await listener.subscribe(channelOf(key));
        const stale = asLease(await store.claim(key, 100));
        await new Promise((resolve) => setTimeout(resolve, 150));
        const current = asLease(await store.claim(key, 5_000));

        // Act
        const staleStored = await stale.complete(Buffer.from([1, 6, 6, 6]), 60_000);
        const currentStored = await current.complete(Buffer.from([1, 7, 7]), 60_000);
        await waitUntil(() => messages.length > 0, 2_000);
        await new Promise((resolve) => setTimeout(resolve, 50));

        // Assess
        assert.equal(staleStored, false);
        assert.equal(currentStored, true);
        assert.deepEqual(await admin.getBuffer(key), Buffer.from([1, 7, 7]));
        assert.deepEqual(messages, [Buffer.from([1, 7, 7])]);
      } finally {
        listener.disconnect();
        await store.close();
        client.disconnect();
      }
    });

    it('hands a waiter in another executor the outcome, and replays in one claim', async () => {
      // Prepare
      const namespace = uniqueNamespace('ifeq');
      const clients = [new Redis(server.url), new Redis(server.url)];
      const [owner, waiter] = clients.map(
        (redis) => new IdempotentExecutor({ redis, namespace }),
      ) as [IdempotentExecutor, IdempotentExecutor];
      try {
        let release!: () => void;
        const gate = new Promise<void>((resolve) => {
          release = resolve;
        });
        let runs = 0;

        // Act
        const first = owner.run('order-3', async () => {
          runs++;
          await gate;
          return { receipt: 'r-3' };
        });
        await waitUntil(() => runs === 1, 2_000);
        const waiting = waiter.run('order-3', async () => {
          runs++;
          return { receipt: 'ran twice' };
        });
        await new Promise((resolve) => setTimeout(resolve, 100));
        release();
        const results = await Promise.all([first, waiting]);
        const replayed = await waiter.run('order-3', async () => ({ receipt: 'ran again' }));

        // Assess
        assert.equal(runs, 1);
        assert.deepEqual(results, [{ receipt: 'r-3' }, { receipt: 'r-3' }]);
        assert.deepEqual(replayed, { receipt: 'r-3' });
      } finally {
        await owner.close();
        await waiter.close();
        for (const client of clients) client.disconnect();
      }
    });

    it('answers LEASE_LOST to an owner whose lease was taken over', async () => {
      const namespace = uniqueNamespace('ifeq');
      const client = new Redis(server.url);
      const executor = new IdempotentExecutor({ redis: client, namespace, leaseMs: 100 });
      try {
        const outcome = executor.run('order-4', async () => {
          // Block renewals: the lease runs out and another owner takes the key.
          const end = Date.now() + 250;
          while (Date.now() < end) {}
          await admin.set(recordKeyOf(namespace, 'order-4'), 'e'.repeat(32), 'PX', 5_000);
          return 'late';
        });
        await assert.rejects(
          outcome,
          (error: unknown) => isIdempotencyError(error) && error.code === 'IDEMPOTENCY_LEASE_LOST',
        );
      } finally {
        await executor.close();
        client.disconnect();
      }
    });
  });
}
