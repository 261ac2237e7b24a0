import type { Cluster, Redis } from 'ioredis';

/** An ioredis client for one server (or a Sentinel-managed master) or a Redis Cluster. */
export type RedisClient = Redis | Cluster;
