import type { Cluster, Redis, RedisOptions } from 'ioredis';

/**
 * A connection of the store's own to one node of `cluster` (`host:port` as in its slot map),
 * made with the cluster's node options (credentials, TLS, timeouts) and `overrides`.
 */
export function connectToNode(cluster: Cluster, node: string, overrides: RedisOptions): Redis {
  const colon = node.lastIndexOf(':');
  const template = cluster.nodes('all')[0];
  if (template === undefined) throw new Error('The cluster has no node connection yet');
  // duplicate() of one of the cluster's own node connections makes a Redis without importing
  // ioredis here: a value import would make ioredis a hard dependency of the whole package,
  // which loads this store even for users of MemoryStore or PostgreSQL. The cluster makes its
  // node connections lazy, read-only where it reads from replicas, and never reconnecting (it
  // reconnects them itself): this one is an ordinary connection, so those are set back to
  // ioredis's defaults.
  const connection = template.duplicate({
    ...cluster.options.redisOptions,
    host: node.slice(0, colon),
    port: Number(node.slice(colon + 1)),
    lazyConnect: false,
    readOnly: false,
    enableOfflineQueue: true,
    retryStrategy: undefined,
    ...overrides,
  } as RedisOptions & { replyMapping?: 'legacy' });
  connection.on('error', noop);
  return connection;
}

function noop(): void {}
