import { Redis } from 'ioredis';

/**
 * The ioredis configurations a raw loop is measured in; the fastest is the ceiling. ioredis 6
 * speaks RESP3 by default, so RESP2 is one of the variants.
 */
export const RAW_CONFIGURATIONS: readonly {
  name: string;
  options: { protocol?: 2; enableAutoPipelining?: boolean };
}[] = [
  { name: 'ioredis default', options: {} },
  { name: 'ioredis auto-pipelining', options: { enableAutoPipelining: true } },
  { name: 'ioredis RESP2', options: { protocol: 2 } },
  { name: 'ioredis RESP2 + auto-pipelining', options: { protocol: 2, enableAutoPipelining: true } },
];

/** One raw client per configuration, each named after it. */
export function rawClients(redisUrl: string): { name: string; client: Redis }[] {
  return RAW_CONFIGURATIONS.map(({ name, options }) => ({
    name,
    client: new Redis(redisUrl, options),
  }));
}
