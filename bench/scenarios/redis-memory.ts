import { IdempotentExecutor } from 'idempotent-executor';
import { Redis } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { type BenchContext, freshNamespace } from '../lib/context.js';
import type { Results } from '../lib/results.js';

/**
 * Point 5: `MEMORY USAGE` of a completed record holding a string of 100 B, 1 KiB and 64 KiB,
 * against a plain `SET` of the same string under a key of the same length (averaged over keys).
 */
export async function redisMemory(context: BenchContext, results: Results): Promise<void> {
  const namespace = freshNamespace('memory');
  const client = new Redis(context.redisUrl);
  const executor = new IdempotentExecutor({ redis: client, namespace });
  const keys = context.quick ? 10 : 100;
  const tick = context.progress.step('Redis memory per record', 3 * keys);
  try {
    for (const valueBytes of [100, 1024, 64 * 1024]) {
      let recordUsage = 0;
      let rawUsage = 0;
      let recordBytes = 0;
      for (let i = 0; i < keys; i++) {
        const value = String(i).padStart(valueBytes, 'x');
        await executor.run(`m${valueBytes}-${i}`, async () => value);
        const recordKey = recordKeyOf(namespace, `m${valueBytes}-${i}`);
        const rawKey = `${namespace}:[m${valueBytes}-${i}]`;
        await context.admin.set(rawKey, value);
        recordUsage += await usage(context, recordKey);
        rawUsage += await usage(context, rawKey);
        recordBytes += await context.admin.strlen(recordKey);
        tick();
      }
      results.redisMemory.push({
        valueBytes,
        recordUsage: recordUsage / keys,
        rawUsage: rawUsage / keys,
        recordBytes: recordBytes / keys,
      });
    }
  } finally {
    await executor.close();
    client.disconnect();
    await context.admin.flushall();
  }
}

async function usage(context: BenchContext, key: string): Promise<number> {
  const bytes = await context.admin.memory('USAGE', key, 'SAMPLES', 0);
  if (bytes === null) throw new Error(`${key} is not in Redis`);
  return Number(bytes);
}
