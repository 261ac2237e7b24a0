import { IdempotentExecutor } from '../../core/executor.js';
import { recordKeyOf } from '../../core/keys.js';
import {
  type CommandContext,
  CommandError,
  ExitCode,
  type ExitCodeValue,
  printJson,
  printLine,
  useColor,
} from '../context.js';
import { formatDuration, formatValue, table, toJsonSafe } from '../display.js';
import { type Entry, entryOf, lastFencingToken } from '../entry.js';

/**
 * `inspect <key>`: the state as the executor's public `inspect()` reports it, and, for a
 * completed record, the decoded value or error read from the record itself.
 */
export async function inspectCommand(context: CommandContext): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  const key = args.key as string;
  const recordKey = recordKeyOf(args.namespace, key);
  const executor = new IdempotentExecutor({
    redis: connection.client,
    namespace: args.namespace,
    storeTimeoutMs: args.timeoutMs,
  });
  let entry: Entry;
  try {
    entry = await inspectEntry(executor, connection.client, recordKey, key);
  } finally {
    await executor.close();
  }
  const fence = await lastFencingToken(connection.client, recordKey);
  if (args.json) {
    printJson(io, { key, namespace: args.namespace, redisKey: recordKey, ...jsonOf(entry, fence) });
  } else {
    printLine(
      io,
      table([['key', key], ['redis key', recordKey], ...rowsOf(entry, fence, useColor(io))]),
    );
  }
  return entry.state === 'unreadable' ? ExitCode.FAILED : ExitCode.OK;
}

async function inspectEntry(
  executor: IdempotentExecutor,
  client: CommandContext['connection']['client'],
  recordKey: string,
  key: string,
): Promise<Entry> {
  let inspection: Awaited<ReturnType<IdempotentExecutor['inspect']>>;
  try {
    inspection = await executor.inspect(key);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'IDEMPOTENCY_CORRUPT_RECORD') {
      return { state: 'unreadable', reason: (err as Error).message };
    }
    if (code === 'IDEMPOTENCY_INVALID_KEY') {
      throw new CommandError((err as Error).message, ExitCode.USAGE, 'INVALID_KEY');
    }
    throw err;
  }
  if (inspection.state === 'absent') return inspection;
  // inspect() says what the key holds; the record holds the value or error, the lease token
  // its claim time.
  const [raw, pttl] = await Promise.all([client.getBuffer(recordKey), client.pttl(recordKey)]);
  // Forgotten or replaced between the two reads: the newer read is the answer.
  return entryOf(key, raw, pttl);
}

function jsonOf(entry: Entry, fence: string | null): Record<string, unknown> {
  const fencing = fence === null ? {} : { lastFencingToken: fence };
  switch (entry.state) {
    case 'absent':
      return { state: 'absent', ...fencing };
    case 'running':
      return {
        state: 'running',
        leaseExpiresInMs: entry.leaseExpiresInMs,
        leaseExpiresAt: new Date(Date.now() + entry.leaseExpiresInMs).toISOString(),
        claimedAt: entry.claimedAt?.toISOString() ?? null,
        ...fencing,
      };
    case 'unreadable':
      return { state: 'unreadable', reason: entry.reason };
    case 'completed':
      return {
        state: 'completed',
        ok: entry.ok,
        startedAt: entry.startedAt.toISOString(),
        completedAt: entry.completedAt.toISOString(),
        durationMs: entry.completedAt.getTime() - entry.startedAt.getTime(),
        expiresInMs: entry.expiresInMs,
        expiresAt:
          entry.expiresInMs < 0 ? null : new Date(Date.now() + entry.expiresInMs).toISOString(),
        fingerprint: entry.fingerprint,
        bytes: entry.bytes,
        ...(entry.ok ? { value: toJsonSafe(entry.value) } : { error: toJsonSafe(entry.error) }),
        ...fencing,
      };
  }
}

function rowsOf(entry: Entry, fence: string | null, color: boolean): Array<[string, string]> {
  const fencing: Array<[string, string]> = fence === null ? [] : [['last fencing token', fence]];
  switch (entry.state) {
    case 'absent':
      return [['state', 'absent (no record: the next run executes fn)'], ...fencing];
    case 'running': {
      const at = new Date(Date.now() + entry.leaseExpiresInMs).toISOString();
      return [
        ['state', 'running'],
        ['lease expires', `in ${formatDuration(entry.leaseExpiresInMs)} (${at}) unless renewed`],
        ...(entry.claimedAt === undefined
          ? []
          : ([['claimed', entry.claimedAt.toISOString()]] as Array<[string, string]>)),
        ...fencing,
      ];
    }
    case 'unreadable':
      return [
        ['state', 'unreadable'],
        ['reason', entry.reason],
        ['hint', '`forget` deletes it'],
      ];
    case 'completed': {
      const took = entry.completedAt.getTime() - entry.startedAt.getTime();
      const expires =
        entry.expiresInMs < 0
          ? 'never'
          : `in ${formatDuration(entry.expiresInMs)} (${new Date(Date.now() + entry.expiresInMs).toISOString()})`;
      return [
        ['state', `completed (${entry.ok ? 'value' : 'cached error'})`],
        ['started', entry.startedAt.toISOString()],
        ['completed', `${entry.completedAt.toISOString()} (took ${formatDuration(took)})`],
        ['expires', expires],
        ['fingerprint', entry.fingerprint ?? '(none)'],
        ['size', `${entry.bytes} bytes`],
        entry.ok
          ? ['value', formatValue(entry.value, color)]
          : ['error', formatValue(entry.error, color)],
        ...fencing,
      ];
    }
  }
}
