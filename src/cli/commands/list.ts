import {
  type CommandContext,
  ExitCode,
  type ExitCodeValue,
  printJson,
  printLine,
} from '../context.js';
import { formatDuration } from '../display.js';
import { type Entry, readEntries } from '../entry.js';
import { idempotencyKeyOf, recordKeyPattern } from '../key-names.js';
import { ScanBudget, scanKeys } from '../scan.js';

interface Listed {
  readonly key: string;
  readonly entry: Entry;
}

/**
 * `list`: the keys of the namespace with their state, by SCAN on every master. Stops at
 * `--limit` keys or once `--scan-limit` keys were visited; says so when it stopped early.
 */
export async function listCommand(context: CommandContext): Promise<ExitCodeValue> {
  const { args, connection, io } = context;
  const budget = new ScanBudget(args.scanLimit);
  const pattern = recordKeyPattern(args.namespace, args.match ?? '*');
  const found: Listed[] = [];
  let limited = false;
  walk: for (const node of connection.masters()) {
    for await (const batch of scanKeys(node, pattern, budget, 'string')) {
      const redisKeys: string[] = [];
      const keys: string[] = [];
      for (const redisKey of batch) {
        const key = idempotencyKeyOf(args.namespace, redisKey);
        if (key === undefined) continue;
        redisKeys.push(redisKey);
        keys.push(key);
      }
      const entries = await readEntries(node, redisKeys, keys);
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i] as Entry;
        if (entry.state === 'absent') continue;
        if (args.state !== undefined && entry.state !== args.state) continue;
        if (found.length === args.limit) {
          limited = true;
          break walk;
        }
        found.push({ key: keys[i] as string, entry });
      }
    }
  }
  found.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  const complete = !limited && budget.complete;
  if (args.json) {
    printJson(io, {
      namespace: args.namespace,
      count: found.length,
      complete,
      keys: found.map(({ key, entry }) => ({ key, ...summaryOf(entry) })),
    });
    return ExitCode.OK;
  }
  if (found.length > 0) {
    const rows = found.map(({ key, entry }) => [key, ...columnsOf(entry)]);
    printLine(io, columns([['KEY', 'STATE', 'COMPLETED', 'EXPIRES IN'], ...rows]));
  }
  const what = args.state === undefined ? '' : `${args.state} `;
  printLine(io, `${found.length} ${what}key${found.length === 1 ? '' : 's'}`);
  if (limited) printLine(io, `Stopped at --limit ${args.limit}: there are more.`);
  else if (!budget.complete)
    printLine(io, `Stopped after --scan-limit ${args.scanLimit} keys visited: there may be more.`);
  return ExitCode.OK;
}

function summaryOf(entry: Entry): Record<string, unknown> {
  switch (entry.state) {
    case 'running':
      return { state: 'running', leaseExpiresInMs: entry.leaseExpiresInMs };
    case 'completed':
      return {
        state: 'completed',
        ok: entry.ok,
        completedAt: entry.completedAt.toISOString(),
        expiresInMs: entry.expiresInMs,
        bytes: entry.bytes,
      };
    case 'unreadable':
      return { state: 'unreadable', reason: entry.reason };
    case 'absent':
      return { state: 'absent' };
  }
}

function columnsOf(entry: Entry): string[] {
  switch (entry.state) {
    case 'running':
      return ['running', '-', `lease ${formatDuration(entry.leaseExpiresInMs)}`];
    case 'completed':
      return [
        entry.ok ? 'completed' : 'completed (error)',
        entry.completedAt.toISOString(),
        entry.expiresInMs < 0 ? 'never' : formatDuration(entry.expiresInMs),
      ];
    case 'unreadable':
      return ['unreadable', '-', '-'];
    case 'absent':
      return ['absent', '-', '-'];
  }
}

function columns(rows: readonly string[][]): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map((row) =>
      row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '),
    )
    .join('\n');
}
