import type { Redis } from 'ioredis';
import {
  type CommandContext,
  ExitCode,
  type ExitCodeValue,
  printJson,
  printLine,
} from '../context.js';
import { formatBytes, formatDuration, table } from '../display.js';
import { type Entry, readEntries } from '../entry.js';
import { idempotencyKeyOf, namespacePattern } from '../key-names.js';
import { ScanBudget, scanKeys } from '../scan.js';

interface Stats {
  running: number;
  completed: number;
  /** Of `completed`: records holding a cached error. */
  cachedErrors: number;
  unreadable: number;
  /** Fencing counters and any other key under the namespace's prefix. */
  otherKeys: number;
  /** MEMORY USAGE summed over every key visited, bytes. */
  bytes: number;
  recordBytes: number;
  /** The running lease closest to expiring: the likeliest stuck or crashed owner. */
  nextLeaseToExpire: { key: string; leaseExpiresInMs: number } | null;
  /** The running lease claimed longest ago (from its token): a stuck owner that keeps renewing. */
  oldestRunning: { key: string; claimedAt: Date } | null;
  oldestCompleted: { key: string; completedAt: Date } | null;
}

/**
 * `stats`: counts by state and bytes in Redis, by SCAN over every key of the namespace on every
 * master (fencing counters included), each record read and MEMORY USAGE asked in pipelines.
 */
export async function statsCommand(context: CommandContext): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  const budget = new ScanBudget(args.scanLimit);
  const stats: Stats = {
    running: 0,
    completed: 0,
    cachedErrors: 0,
    unreadable: 0,
    otherKeys: 0,
    bytes: 0,
    recordBytes: 0,
    nextLeaseToExpire: null,
    oldestRunning: null,
    oldestCompleted: null,
  };
  for (const node of connection.masters()) {
    for await (const batch of scanKeys(node, namespacePattern(args.namespace), budget)) {
      await addBatch(stats, node, args.namespace, batch);
    }
  }
  const complete = budget.complete;
  if (args.json) {
    printJson(io, {
      namespace: args.namespace,
      complete,
      keys: {
        running: stats.running,
        completed: stats.completed,
        cachedErrors: stats.cachedErrors,
        unreadable: stats.unreadable,
        other: stats.otherKeys,
      },
      bytes: stats.bytes,
      recordBytes: stats.recordBytes,
      nextLeaseToExpire: stats.nextLeaseToExpire,
      oldestRunning:
        stats.oldestRunning === null
          ? null
          : {
              key: stats.oldestRunning.key,
              claimedAt: stats.oldestRunning.claimedAt.toISOString(),
            },
      oldestCompleted:
        stats.oldestCompleted === null
          ? null
          : {
              key: stats.oldestCompleted.key,
              completedAt: stats.oldestCompleted.completedAt.toISOString(),
            },
    });
    return ExitCode.OK;
  }
  const lease = stats.nextLeaseToExpire;
  const oldest = stats.oldestCompleted;
  const running = stats.oldestRunning;
  printLine(
    io,
    table([
      ['namespace', args.namespace],
      ['running', String(stats.running)],
      ['completed', `${stats.completed} (${stats.cachedErrors} cached errors)`],
      ['unreadable', String(stats.unreadable)],
      ['other keys', `${stats.otherKeys} (fencing counters)`],
      ['memory', `${formatBytes(stats.bytes)} (records ${formatBytes(stats.recordBytes)})`],
      [
        'next lease to expire',
        lease === null ? '-' : `${lease.key} in ${formatDuration(lease.leaseExpiresInMs)}`,
      ],
      [
        'oldest running lease',
        running === null
          ? '-'
          : `${running.key} (claimed ${formatDuration(Date.now() - running.claimedAt.getTime())} ago, ${running.claimedAt.toISOString()})`,
      ],
      [
        'oldest record',
        oldest === null ? '-' : `${oldest.key} (${oldest.completedAt.toISOString()})`,
      ],
    ]),
  );
  if (!complete)
    printLine(io, `Stopped after --scan-limit ${args.scanLimit} keys visited: counts are partial.`);
  return ExitCode.OK;
}

async function addBatch(stats: Stats, node: Redis, namespace: string, batch: string[]) {
  const pipeline = node.pipeline();
  for (const redisKey of batch) pipeline.call('MEMORY', 'USAGE', redisKey, 'SAMPLES', '0');
  const sizes = ((await pipeline.exec()) ?? []).map(([, size]) =>
    typeof size === 'number' ? size : 0,
  );
  const redisKeys: string[] = [];
  const keys: string[] = [];
  batch.forEach((redisKey, i) => {
    const size = sizes[i] ?? 0;
    stats.bytes += size;
    const key = idempotencyKeyOf(namespace, redisKey);
    if (key === undefined) {
      stats.otherKeys++;
      return;
    }
    stats.recordBytes += size;
    redisKeys.push(redisKey);
    keys.push(key);
  });
  const entries = await readEntries(node, redisKeys, keys);
  entries.forEach((entry: Entry, i) => {
    const key = keys[i] as string;
    switch (entry.state) {
      case 'running':
        stats.running++;
        if (
          stats.nextLeaseToExpire === null ||
          entry.leaseExpiresInMs < stats.nextLeaseToExpire.leaseExpiresInMs
        ) {
          stats.nextLeaseToExpire = { key, leaseExpiresInMs: entry.leaseExpiresInMs };
        }
        if (
          entry.claimedAt !== undefined &&
          (stats.oldestRunning === null || entry.claimedAt < stats.oldestRunning.claimedAt)
        ) {
          stats.oldestRunning = { key, claimedAt: entry.claimedAt };
        }
        return;
      case 'completed':
        stats.completed++;
        if (!entry.ok) stats.cachedErrors++;
        if (
          stats.oldestCompleted === null ||
          entry.completedAt < stats.oldestCompleted.completedAt
        ) {
          stats.oldestCompleted = { key, completedAt: entry.completedAt };
        }
        return;
      case 'unreadable':
        stats.unreadable++;
        return;
      case 'absent':
        // Expired or forgotten between SCAN and the read.
        return;
    }
  });
}
