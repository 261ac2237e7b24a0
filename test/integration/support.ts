// Small things the integration tests share.
import type { Redis } from 'ioredis';
import { waitUntil } from '../helpers/redis.js';

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The record key of an idempotency key made only of characters that need no escaping. */
export function plainRecordKey(namespace: string, key: string): string {
  return `${namespace}:{${key}}`;
}

/** Every Redis key under `namespace`, sorted (SCAN, never KEYS on the shared server). */
export async function keysUnder(redis: Redis, namespace: string): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${namespace}:*`, 'COUNT', 1000);
    cursor = next;
    found.push(...keys);
  } while (cursor !== '0');
  return found.sort();
}

/** The pub/sub channels (not shard channels) under `namespace` with at least one subscriber. */
export async function channelsIn(redis: Redis, namespace: string): Promise<string[]> {
  return (await redis.pubsub('CHANNELS', `${namespace}:*`)) as string[];
}

/** How many subscriptions the channels under `namespace` have, summed. */
export async function subscribersIn(redis: Redis, namespace: string): Promise<number> {
  const channels = await channelsIn(redis, namespace);
  if (channels.length === 0) return 0;
  const reply = (await redis.pubsub('NUMSUB', ...channels)) as (string | number)[];
  let total = 0;
  for (let i = 1; i < reply.length; i += 2) total += Number(reply[i]);
  return total;
}

/**
 * Waits until `count` waiters (each on its own subscriber connection) listen on the channels of
 * `namespace`: then they have read the running lease and wait for its outcome.
 */
export function waitForWaiters(redis: Redis, namespace: string, count: number): Promise<void> {
  return waitUntil(async () => (await subscribersIn(redis, namespace)) >= count, 20_000, 25);
}

/** How many times the fns of a test ran, counted with INCR on `key` in every process. */
export async function executions(redis: Redis, key: string): Promise<number> {
  return Number((await redis.get(key)) ?? '0');
}

/** The rejection of `promise`, failing the test if it resolves. */
export async function rejectionOf(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

/** A promise with its resolve function, for fns the test releases when it is ready. */
export function gate(): { promise: Promise<void>; open: () => void } {
  let open = () => {};
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

/** `promise`, or a rejection if it has not settled within `ms` (a hang is a failure, not a wait). */
export async function settledWithin<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
