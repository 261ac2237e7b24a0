import type { Cluster, Redis } from 'ioredis';

/**
 * The ioredis client the store works with, internally. The public {@link RedisClient} is a
 * structural view of the same object, so that the public types never import ioredis.
 */
export type RedisConnection = Redis | Cluster;
