import { IdempotentExecutor } from 'idempotent-executor';
import { Cluster, Redis } from 'ioredis';
import { LocalCluster } from '../../test/cluster/support/local-cluster.js';
import { type Contender, compare } from '../lib/compare.js';
import { type BenchContext, freshNamespace, payload } from '../lib/context.js';
import type { Results } from '../lib/results.js';

/**
 * Issue 4's measurement: fresh runs at concurrency 64 on a 3-master Redis Cluster (started here
 * from redis-server, on this machine) beside the bench's single server, with default-configured
 * clients handed to the executor, and the raw two-command loop (RESP2 + auto-pipelining) on each.
 * On one machine the three masters share its cores with the bench, so this shows the client-side
 * cost of a cluster, not how a cluster scales across machines.
 */
export async function clusterThroughput(context: BenchContext, results: Results): Promise<void> {
  const local = await LocalCluster.start({ masters: 3 });
  const namespace = freshNamespace('cluster');
  const single = new Redis(context.redisUrl);
  const clustered = new Cluster(local.startupNodes);
  const fastSingle = new Redis(context.redisUrl, { protocol: 2, enableAutoPipelining: true });
  const fastCluster = new Cluster(local.startupNodes, {
    enableAutoPipelining: true,
    redisOptions: { protocol: 2 },
  });
  const onSingle = new IdempotentExecutor({ redis: single, namespace });
  const onCluster = new IdempotentExecutor({ redis: clustered, namespace });
  const raw = (client: Redis | Cluster) => async (round: number, i: number) => {
    const key = `${namespace}:{c${round}-${i}}`;
    await client.set(key, 'lease-token', 'PX', 10_000, 'NX');
    await client.set(key, JSON.stringify(payload(key)), 'PX', 86_400_000);
  };
  const executor = (on: IdempotentExecutor) => (round: number, i: number) => {
    const key = `c${round}-${i}`;
    return on.run(key, async () => payload(key));
  };
  try {
    const contenders: Contender[] = [
      { name: 'idempotent-executor', note: 'one server', operation: executor(onSingle) },
      { name: 'idempotent-executor', note: '3-master cluster', operation: executor(onCluster) },
      { name: 'raw SET NX PX + SET PX', note: 'one server', operation: raw(fastSingle) },
      { name: 'raw SET NX PX + SET PX', note: '3-master cluster', operation: raw(fastCluster) },
    ];
    results.cluster.push(
      ...(await compare(context, contenders, {
        label: 'cluster',
        concurrencies: [64],
        runs: () => (context.quick ? 300 : 20_000),
        rounds: context.quick ? 1 : 3,
        warmup: context.quick ? 200 : 5_000,
      })),
    );
  } finally {
    await Promise.all([onSingle.close(), onCluster.close()]);
    for (const client of [single, fastSingle]) client.disconnect();
    for (const client of [clustered, fastCluster]) client.disconnect();
    await local.stop();
    await context.admin.flushall();
  }
}
