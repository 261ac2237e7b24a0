// Duplicates from several OS processes on a Redis Cluster of three masters: fn runs once, waiters
// in other processes get the outcome by sharded pub/sub, a killed owner is taken over; and the
// keys of different idempotency keys spread evenly over the masters.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { IdempotentExecutor } from '../../src/index.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { clusterSlot } from '../helpers/key-slot.js';
import { uniqueNamespace, waitUntil } from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import { LocalCluster } from './support/local-cluster.js';
import { deleteClusterNamespace, keysPerMaster } from './support/namespace.js';
import { ClusterProcess, type ResultEvent } from './workers/cluster-process.js';

/** Subscriptions to the key's channel on the master serving its slot (PUBSUB SHARDNUMSUB). */
async function shardSubscribers(
  cluster: LocalCluster,
  namespace: string,
  key: string,
): Promise<number> {
  const channel = `${recordKeyOf(namespace, key)}:done`;
  const master = await cluster.masterOf(keySlot(channel));
  const reply = (await cluster.command(master.port, 'PUBSUB', 'SHARDNUMSUB', channel)) as [
    string,
    number,
  ];
  return Number(reply[1]);
}

describe('the executor on a 3-master Redis Cluster, across processes', () => {
  let cluster: LocalCluster;
  let redis: Cluster;
  let namespace: string;

  before(async () => {
    cluster = await LocalCluster.start({ masters: 3 });
    redis = cluster.client();
  });
  after(async () => {
    await stopAllWorkers();
    redis?.disconnect();
    await cluster?.stop();
  });
  afterEach(async () => {
    await stopAllWorkers();
    await deleteClusterNamespace(redis, namespace);
  });

  const start = (count: number, options: { leaseMs?: number; waitTimeoutMs?: number } = {}) => {
    namespace = uniqueNamespace('cluster-xproc');
    return ClusterProcess.startMany(count, {
      port: cluster.startupNodes[0]?.port ?? 0,
      namespace,
      ...options,
    });
  };
  const valuesOf = (results: readonly ResultEvent[]) =>
    results.map((result) =>
      result.ok ? result.value : `${result.error.code}: ${result.error.message}`,
    );

  it('runs fn once for 4 concurrent calls in each of 3 processes and gives all 12 its value', async () => {
    // Prepare
    const workers = await start(3, { leaseMs: 5_000 });

    // Act
    const ids = workers.map((worker) => worker.run({ key: 'order-1', calls: 4, sleepMs: 300 }));
    const results = (
      await Promise.all(workers.map((worker, i) => worker.results(ids[i] as string, 4)))
    ).flat();

    // Assess
    const executions = workers.flatMap((worker) => worker.executions());
    assert.equal(executions.length, 1, `fn ran in ${executions.map((e) => e.pid).join(', ')}`);
    assert.equal(results.length, 12);
    assert.deepEqual(new Set(results.map((result) => result.pid)).size, 3);
    for (const value of valuesOf(results)) assert.deepEqual(value, { by: executions[0]?.pid });
  });

  it('hands the owner value to waiters in two other processes by sharded pub/sub, well before the lease ends', async () => {
    // Prepare: a lease far longer than the wait bound, so only the message can settle waiters.
    const [owner, second, third] = await start(3, { leaseMs: 60_000, waitTimeoutMs: 15_000 });
    assert.ok(owner && second && third);
    const running = owner.run({ key: 'order-2', gate: 'finish' });
    await owner.started(running);
    const waiting = [second, third].map((worker) => worker.run({ key: 'order-2', calls: 5 }));
    await waitUntil(
      async () => (await shardSubscribers(cluster, namespace, 'order-2')) >= 2,
      20_000,
    );

    // Act
    owner.open('finish');
    const [ownerResult] = await owner.results(running);
    const waiterResults = [
      ...(await second.results(waiting[0] as string, 5)),
      ...(await third.results(waiting[1] as string, 5)),
    ];

    // Assess
    assert.deepEqual(valuesOf([ownerResult as ResultEvent]), [{ by: owner.pid }]);
    assert.equal(waiterResults.length, 10);
    for (const value of valuesOf(waiterResults)) assert.deepEqual(value, { by: owner.pid });
    assert.equal(second.executions().length + third.executions().length, 0);
  });

  it('lets a waiting process take over with a larger fencing token when the owner is SIGKILLed', async () => {
    // Prepare
    const [owner, taker] = await start(2, { leaseMs: 1_500, waitTimeoutMs: 20_000 });
    assert.ok(owner && taker);
    const running = owner.run({ key: 'order-3', gate: 'never', fence: true });
    const ownerStart = await owner.started(running);
    const waiting = taker.run({ key: 'order-3', calls: 3, fence: true });
    await waitUntil(
      async () => (await shardSubscribers(cluster, namespace, 'order-3')) >= 1,
      20_000,
    );

    // Act
    await owner.kill();
    const results = await taker.results(waiting, 3);

    // Assess
    const [takeover] = taker.executions();
    assert.equal(taker.executions().length, 1);
    assert.ok(
      (takeover?.token ?? 0) > (ownerStart.token ?? Number.POSITIVE_INFINITY),
      `takeover token ${takeover?.token} after owner token ${ownerStart.token}`,
    );
    for (const value of valuesOf(results)) {
      assert.deepEqual(value, { by: taker.pid, token: takeover?.token });
    }
  });

  it('keeps a record, its fence counter and its channel in one slot, the one Redis computes', async () => {
    for (const key of [
      'order-4',
      'a:b',
      '{braces}',
      '%7B',
      'ünïcödé',
      '}{',
      '{}',
      'x'.repeat(1024),
    ]) {
      const recordKey = recordKeyOf('ns:{odd}', key);
      const names = [recordKey, `${recordKey}:fence`, `${recordKey}:done`];

      const serverSlots = await Promise.all(
        names.map((name) => redis.cluster('KEYSLOT', name) as Promise<number>),
      );

      assert.deepEqual(new Set(serverSlots).size, 1, `one slot for ${key}`);
      assert.equal(keySlot(recordKey), serverSlots[0], `library slot of ${key}`);
      assert.equal(clusterSlot(recordKey), serverSlots[0], `reference slot of ${key}`);
    }
  });

  it('spreads the records of 10,000 keys evenly over the 3 masters', async () => {
    // Prepare
    namespace = uniqueNamespace('cluster-spread');
    const executor = new IdempotentExecutor({ redis, namespace });
    const keys = Array.from({ length: 10_000 }, (_, i) => `order-${i}`);

    // Act: store every record for real, then count keys on each master.
    for (let i = 0; i < keys.length; i += 500) {
      await Promise.all(keys.slice(i, i + 500).map((key) => executor.run(key, async () => i)));
    }
    await executor.close();
    const counts = [...(await keysPerMaster(redis, namespace)).values()];
    const slots = new Map<number, number>();
    for (const key of keys) {
      const slot = keySlot(recordKeyOf(namespace, key));
      slots.set(slot, (slots.get(slot) ?? 0) + 1);
    }

    // Assess: each master serves a third of the slots, so should hold about a third of the keys.
    const shares = counts.map((count) => count / keys.length);
    console.log(
      `records per master: ${counts.join(' / ')} ` +
        `(shares ${shares.map((share) => share.toFixed(3)).join(' / ')}); ` +
        `${slots.size} distinct slots, at most ${Math.max(...slots.values())} keys in one slot`,
    );
    assert.equal(counts.length, 3);
    assert.equal(
      counts.reduce((sum, count) => sum + count, 0),
      keys.length,
    );
    for (const share of shares) assert.ok(Math.abs(share - 1 / 3) < 0.02, `shares ${shares}`);
  });
});
