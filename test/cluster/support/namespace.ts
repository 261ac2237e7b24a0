import type { Cluster } from 'ioredis';

/** Deletes every key under `namespace` on every master of the cluster (SCAN + UNLINK per node). */
export async function deleteClusterNamespace(cluster: Cluster, namespace: string): Promise<void> {
  await Promise.all(
    cluster.nodes('master').map(async (node) => {
      let cursor = '0';
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
        cursor = next;
        // One UNLINK per key: keys of different idempotency keys live in different slots.
        await Promise.all(keys.map((key) => node.unlink(key)));
      } while (cursor !== '0');
    }),
  );
}

/** How many keys under `namespace` each master holds, by port. */
export async function keysPerMaster(
  cluster: Cluster,
  namespace: string,
): Promise<Map<number, number>> {
  const counts = new Map<number, number>();
  await Promise.all(
    cluster.nodes('master').map(async (node) => {
      let cursor = '0';
      let count = 0;
      do {
        const [next, keys] = await node.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
        cursor = next;
        count += keys.length;
      } while (cursor !== '0');
      counts.set(Number(node.options.port), count);
    }),
  );
  return counts;
}
