import { type Cluster, Redis, type RedisOptions } from 'ioredis';

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
  const connection = new Redis(options as RedisOptions & { replyMapping?: 'legacy' });
  connection.on('error', noop);
  return connection;
}

function noop(): void {}
