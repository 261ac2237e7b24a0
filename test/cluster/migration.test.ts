// A slot moves from one master to another (CLUSTER SETSLOT IMPORTING / MIGRATING, MIGRATE,
// SETSLOT NODE) while duplicates wait on keys of that slot and new keys of the slot keep coming.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { IdempotentExecutor } from '../../src/index.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { uniqueNamespace, waitUntil } from '../helpers/redis.js';
import { type ClusterNodeProcess, LocalCluster } from './support/local-cluster.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** `count` idempotency keys whose records hash to `slot`. */
function keysInSlot(namespace: string, slot: number, count: number, prefix: string): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < count; i++) {
    if (keySlot(recordKeyOf(namespace, `${prefix}-${i}`)) === slot) keys.push(`${prefix}-${i}`);
  }
  return keys;
}

describe('a slot migration while duplicates wait', () => {
  let cluster: LocalCluster;
  const clients: Cluster[] = [];
  const executors: IdempotentExecutor[] = [];
  before(async () => {
    cluster = await LocalCluster.start({ masters: 3 });
  });
  after(async () => {
    await Promise.all(executors.map((executor) => executor.close()));
    for (const client of clients) client.disconnect();
    await cluster?.stop();
  });

  /**
   * Moves `slot` from `source` to `target` as `redis-cli --cluster reshard` does, calling
   * `whileMigrating` once the keys have moved, and `onceTargetOwns` once the target serves the
   * slot but the source does not know yet (it still holds the subscriptions of the slot).
   */
  async function migrate(
    slot: number,
    source: ClusterNodeProcess,
    target: ClusterNodeProcess,
    whileMigrating: () => Promise<void>,
    onceTargetOwns: () => Promise<void>,
  ): Promise<void> {
    await cluster.command(target.port, 'CLUSTER', 'SETSLOT', slot, 'IMPORTING', source.id);
    await cluster.command(source.port, 'CLUSTER', 'SETSLOT', slot, 'MIGRATING', target.id);
    for (;;) {
      const keys = (await cluster.command(
        source.port,
        'CLUSTER',
        'GETKEYSINSLOT',
        slot,
        100,
      )) as string[];
      if (keys.length === 0) break;
      await cluster.command(
        source.port,
        'MIGRATE',
        '127.0.0.1',
        target.port,
        '',
        0,
        5_000,
        'KEYS',
        ...keys,
      );
    }
    await whileMigrating();
    await cluster.command(target.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    await onceTargetOwns();
    for (const node of cluster.nodes.filter((candidate) => candidate !== target)) {
      await cluster.command(node.port, 'CLUSTER', 'SETSLOT', slot, 'NODE', target.id);
    }
  }

  it('settles the waiters of keys completed during and after the move, and the new keys of the slot', async () => {
    // Prepare: leases (60 s) far beyond the wait bound (15 s): a waiter whose subscription was
    // dropped by the move and never re-read would end with IDEMPOTENCY_WAIT_TIMEOUT.
    const namespace = uniqueNamespace('migration');
    const executorOf = (leaseMs: number) => {
      const client = cluster.client();
      clients.push(client);
      const executor = new IdempotentExecutor({
        redis: client,
        namespace,
        leaseMs,
        waitTimeoutMs: 15_000,
      });
      executors.push(executor);
      return executor;
    };
    const owner = executorOf(60_000);
    const waiters = [executorOf(60_000), executorOf(60_000)];
    const newcomers = [executorOf(5_000), executorOf(5_000)];
    const slot = keySlot(recordKeyOf(namespace, 'order-0'));
    const [duringKey, afterKey] = keysInSlot(namespace, slot, 2, 'order') as [string, string];
    const freshKeys = keysInSlot(namespace, slot, 40, 'fresh');
    const source = await cluster.masterOf(slot);
    const target = cluster.nodes.find((node) => node !== source) as ClusterNodeProcess;
    const gates = new Map<string, () => void>();
    const runs: string[] = [];
    const owned = [duringKey, afterKey].map((key) =>
      owner.run(key, async () => {
        runs.push(key);
        await new Promise<void>((resolve) => gates.set(key, resolve));
        return `${key} charged`;
      }),
    );
    await waitUntil(() => gates.size === 2, 10_000);
    const waited = [duringKey, afterKey].flatMap((key) =>
      waiters.flatMap((waiter) =>
        [1, 2, 3].map(() => waiter.run(key, async () => 'waiter ran fn')),
      ),
    );
    await waitUntil(async () => {
      const reply = (await cluster.command(
        source.port,
        'PUBSUB',
        'SHARDNUMSUB',
        ...[duringKey, afterKey].map((key) => `${recordKeyOf(namespace, key)}:done`),
      )) as (string | number)[];
      return Number(reply[1]) >= 2 && Number(reply[3]) >= 2;
    }, 10_000);

    // Act: new keys of the slot arrive every 50 ms from two executors while the slot moves.
    // The first owner finishes while the slot is migrating: its completion (a script on two
    // keys of the slot) meets TRYAGAIN until the target owns the slot, then is published on the
    // target while the waiters still listen on the source, which drops them only when it
    // learns of the move: they must re-read. The second owner finishes once the slot has moved.
    let arriving = true;
    const fresh: Promise<string>[] = [];
    const arrivals = (async () => {
      for (const key of freshKeys) {
        if (!arriving) break;
        for (const newcomer of newcomers) {
          fresh.push(
            newcomer.run(key, async () => {
              runs.push(key);
              await sleep(50);
              return `${key} done`;
            }),
          );
        }
        await sleep(50);
      }
    })();
    await sleep(200);
    await migrate(
      slot,
      source,
      target,
      async () => {
        gates.get(duringKey)?.();
        await sleep(300);
      },
      () => waitUntil(async () => (await owner.inspect(duringKey)).state === 'completed', 10_000),
    );
    const movedTo = await cluster.masterOf(slot);
    await sleep(300);
    gates.get(afterKey)?.();
    const ownerValues = await Promise.all(owned);
    const waiterValues = await Promise.all(waited);
    arriving = false;
    await arrivals;
    const freshValues = await Promise.all(fresh);

    // Assess
    assert.equal(movedTo.port, target.port);
    assert.deepEqual(ownerValues, [`${duringKey} charged`, `${afterKey} charged`]);
    assert.deepEqual(waiterValues, [
      ...Array(6).fill(`${duringKey} charged`),
      ...Array(6).fill(`${afterKey} charged`),
    ]);
    for (const [i, value] of freshValues.entries()) {
      assert.equal(value, `${freshKeys[Math.floor(i / 2)]} done`);
    }
    assert.equal(runs.length, new Set(runs).size, `a key ran twice: ${runs.join(' ')}`);
    console.log(
      `slot ${slot} moved from :${source.port} to :${target.port}; ` +
        `${freshValues.length / 2} new keys of the slot ran during the move`,
    );
  });
});
