import type { Redis } from 'ioredis';
import { newLeaseToken } from '../../src/store/lease-token.js';
import { defineScript } from '../../src/store/redis/define-script.js';
import { channelOf } from '../../src/store/redis/key-layout.js';
import { completeScript } from '../../src/store/redis/scripts/complete.js';

/**
 * How the executor's own command connection is configured (see RedisStore): RESP2,
 * auto-pipelining, and every command bounded (the default `storeTimeoutMs`, which costs ioredis a
 * timer per command) with one retry.
 */
export const EXECUTOR_CONNECTION = {
  protocol: 2,
  enableAutoPipelining: true,
  commandTimeout: 2_000,
  maxRetriesPerRequest: 1,
} as const;

/**
 * The protocol floor of a fresh run: the commands the executor sends, and nothing else of ours —
 * `SET key token NX PX GET`, then the completion (the complete script by EVALSHA, or on a server
 * with IFEQ, `SET key record IFEQ token PX` and, once stored, `PUBLISH`), on a connection
 * configured like the executor's. `record` is encoded once beforehand.
 */
export function floorRun(
  client: Redis,
  completion: 'script' | 'ifeq',
): (key: string, record: Buffer) => Promise<void> {
  const complete = defineScript(client, completeScript);
  return async (key, record) => {
    const token = newLeaseToken();
    const held = await client.setBuffer(key, token, 'PX', 10_000, 'NX', 'GET');
    if (held !== null) throw new Error('floor: key already held');
    if (completion === 'script') {
      const stored = await complete([key, channelOf(key)], [token, record, 86_400_000, 'PUBLISH']);
      if (stored !== 1) throw new Error('floor: completion refused');
      return;
    }
    const reply = await client.call('SET', key, record, 'IFEQ', token, 'PX', 86_400_000);
    if (reply !== 'OK') throw new Error('floor: completion refused');
    client.publish(channelOf(key), record).catch(() => {});
  };
}

/** Redis's own CPU time so far (user + system), µs, from `INFO cpu`. */
export async function serverCpuMicros(admin: Redis): Promise<number> {
  const info = await admin.info('cpu');
  const user = Number(/used_cpu_user:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  const sys = Number(/used_cpu_sys:([\d.]+)/.exec(info)?.[1] ?? Number.NaN);
  return (user + sys) * 1e6;
}
