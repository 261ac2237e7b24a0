// Masters of a 3-master cluster (no replicas) are SIGKILLed: calls fail closed
// (IDEMPOTENCY_STORE_UNAVAILABLE, fn not run) within a bound, with a default-configured Cluster
// client whose own offline queue and retries would otherwise hold commands far longer.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { uniqueNamespace } from '../helpers/redis.js';
import { LocalCluster } from './support/local-cluster.js';

/** A correctness bound (a call must settle), far above storeTimeoutMs: not a speed claim. */
const SETTLES_WITHIN_MS = 15_000;

interface Settled {
  readonly key: string;
  readonly afterMs: number;
  readonly ran: boolean;
  readonly outcome: string;
}

describe('when masters of the cluster are unreachable', () => {
  let cluster: LocalCluster;
  let client: Cluster;
  let executor: IdempotentExecutor;
  const namespace = uniqueNamespace('cluster-down');

  before(async () => {
    cluster = await LocalCluster.start({ masters: 3 });
    client = cluster.client();
    client.on('error', () => {});
    executor = new IdempotentExecutor({ redis: client, namespace, storeTimeoutMs: 1_000 });
    await executor.run('warm-up', async () => 'ok');
  });
  after(async () => {
    await executor?.close();
    client?.disconnect();
    await cluster?.stop();
  });

  const attempt = async (key: string): Promise<Settled> => {
    const startedAt = Date.now();
    let ran = false;
    const outcome = await executor
      .run(key, async () => {
        ran = true;
        return 'ran';
      })
      .catch((error: unknown) => (isIdempotencyError(error) ? error.code : String(error)));
    return { key, afterMs: Date.now() - startedAt, ran, outcome };
  };

  it('fails the keys of a dead master closed within a bound, before and after the cluster marks it failed', async () => {
    // Prepare: keys on every master.
    const victim = cluster.nodes[0];
    assert.ok(victim);
    const keys = Array.from({ length: 30 }, (_, i) => `order-${i}`);
    const onVictim = new Set<string>();
    for (const key of keys) {
      const master = await cluster.masterOf(keySlot(recordKeyOf(namespace, key)));
      if (master.port === victim.port) onVictim.add(key);
    }

    // Act: call every key right after the kill, and again once the node timeout has passed.
    await cluster.kill(victim);
    const right = await Promise.all(keys.map((key) => attempt(`${key}`)));
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    const later = await Promise.all(keys.map((key) => attempt(`${key}-later`)));

    // Assess
    console.log(
      `right after the kill: ${summary(right)}; after the node timeout: ${summary(later)}`,
    );
    for (const settled of [...right, ...later]) {
      assert.ok(settled.afterMs < SETTLES_WITHIN_MS, `${settled.key} after ${settled.afterMs} ms`);
      assert.ok(
        ['ran', 'IDEMPOTENCY_STORE_UNAVAILABLE'].includes(settled.outcome),
        `${settled.key}: ${settled.outcome}`,
      );
      assert.equal(settled.ran, settled.outcome === 'ran', `${settled.key} ran and failed`);
    }
    for (const settled of right) {
      if (onVictim.has(settled.key)) assert.equal(settled.outcome, 'IDEMPOTENCY_STORE_UNAVAILABLE');
    }
  });

  it('fails every call closed within a bound once no node answers at all', async () => {
    // Act
    for (const node of cluster.running()) await cluster.kill(node);
    const settled = await Promise.all(
      Array.from({ length: 10 }, (_, i) => attempt(`everything-down-${i}`)),
    );

    // Assess
    console.log(`no node left: ${summary(settled)}`);
    for (const call of settled) {
      assert.equal(call.outcome, 'IDEMPOTENCY_STORE_UNAVAILABLE');
      assert.equal(call.ran, false);
      assert.ok(call.afterMs < SETTLES_WITHIN_MS, `${call.key} after ${call.afterMs} ms`);
    }
  });
});

function summary(calls: readonly Settled[]): string {
  const counts = new Map<string, number>();
  for (const call of calls) counts.set(call.outcome, (counts.get(call.outcome) ?? 0) + 1);
  const slowest = Math.max(...calls.map((call) => call.afterMs));
  return `${[...counts].map(([outcome, count]) => `${outcome} ${count}`).join(', ')} (slowest ${slowest} ms)`;
}
