/**
 * An ioredis client for one server (or a Sentinel-managed master) or a Redis Cluster: what
 * `new IdempotentExecutor({ redis })` accepts. Declared by the few members the executor reads
 * rather than imported from ioredis, so the public types load in a project without ioredis
 * (one on `MemoryStore` or PostgreSQL), where ioredis is an optional peer.
 */
export interface RedisClient {
  /** Opens a connection like this one; the store makes its own connections with it. */
  // biome-ignore lint/suspicious/noExplicitAny: matches both Redis#duplicate and Cluster#duplicate
  duplicate(...args: any[]): unknown;
  readonly options: { readonly keyPrefix?: string | undefined };
  /** true on an ioredis `Cluster`. */
  readonly isCluster?: boolean;
}
