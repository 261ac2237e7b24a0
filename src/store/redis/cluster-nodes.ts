import type { Cluster, Redis, RedisOptions } from 'ioredis';

/**
 * A connection of the store's own to one node of `cluster` (`host:port` as in its slot map),
 * made with the cluster's node options (credentials, TLS, timeouts) and `overrides`.
 */
export function connectToNode(cluster: Cluster, node: string, overrides: RedisOptions): Redis {
  const colon = node.lastIndexOf(':');
  const options: RedisOptions = {
    ...cluster.options.redisOptions,
    host: node.slice(0, colon),
    port: Number(node.slice(colon + 1)),
    ...overrides,
  };
  const connection = new (redisClassOf(cluster))(
    options as RedisOptions & { replyMapping?: 'legacy' },
  );
  connection.on('error', noop);
  return connection;
}

/**
 * ioredis's `Redis` class, taken from a node connection of `cluster` rather than imported: a
 * value import of ioredis would make it a hard dependency of the whole package, which loads the
 * Redis store even for users of `MemoryStore` or PostgreSQL. A cluster that names a node in
 * its slot map has connections to its nodes.
 */
function redisClassOf(cluster: Cluster): typeof Redis {
  const node = cluster.nodes('all')[0];
  if (node === undefined) throw new Error('The cluster has no node connection yet');
  return node.constructor as typeof Redis;
}

function noop(): void {}
