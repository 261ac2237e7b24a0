import { parseArgs } from 'node:util';

/** A command line that cannot be run as written: reported with the usage, exit code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export const COMMANDS = ['inspect', 'forget', 'list', 'stats', 'watch'] as const;
export type CommandName = (typeof COMMANDS)[number];

/** Everything the command line said, checked. */
export interface CliArguments {
  readonly command: CommandName | 'help';
  /** The idempotency key of `inspect` and `forget`. */
  readonly key: string | undefined;
  readonly namespace: string;
  readonly redisUrl: string;
  readonly cluster: boolean;
  readonly json: boolean;
  /** Bound on connecting and on each Redis command, ms. */
  readonly timeoutMs: number;
  readonly state: 'running' | 'completed' | undefined;
  readonly match: string | undefined;
  readonly limit: number;
  /** Bound on the keys a SCAN walk may visit (list, stats; watch on a cluster, per walk). */
  readonly scanLimit: number;
  /** watch on a Redis Cluster: how often the namespace's running leases are looked for, ms. */
  readonly rescanMs: number;
  readonly force: boolean;
  readonly yes: boolean;
}

const OPTIONS = {
  namespace: { type: 'string', short: 'n' },
  redis: { type: 'string', short: 'r' },
  cluster: { type: 'boolean' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
  state: { type: 'string' },
  match: { type: 'string' },
  limit: { type: 'string' },
  'scan-limit': { type: 'string' },
  'rescan-ms': { type: 'string' },
  force: { type: 'boolean' },
  yes: { type: 'boolean', short: 'y' },
  help: { type: 'boolean', short: 'h' },
} as const;

type OptionName = keyof typeof OPTIONS;

const COMMON: readonly OptionName[] = ['namespace', 'redis', 'cluster', 'json', 'timeout', 'help'];

/** The options each command accepts beside the common ones. */
const COMMAND_OPTIONS: Readonly<Record<CommandName, readonly OptionName[]>> = {
  inspect: [],
  forget: ['force', 'yes'],
  list: ['state', 'match', 'limit', 'scan-limit'],
  stats: ['scan-limit'],
  watch: ['rescan-ms', 'scan-limit'],
};

export const DEFAULT_REDIS_URL = 'redis://127.0.0.1:6379';
export const DEFAULT_NAMESPACE = 'idem';
const DEFAULT_TIMEOUT_MS = 5_000;
const DEFAULT_LIMIT = 100;
const DEFAULT_SCAN_LIMIT = 10_000_000;
const DEFAULT_RESCAN_MS = 1_000;

export const USAGE = `Usage: idempotent-executor <command> [options]

Commands:
  inspect <key>     state, timestamps, expiry, fingerprint and the stored value or error
  forget <key>      delete a completed record (refused while it runs, unless --force)
  list              keys of the namespace: [--state running|completed] [--match GLOB] [--limit N]
  stats             counts by state, bytes in Redis, the next running lease to expire
  watch             completions, renewals, releases and takeovers as they happen (Ctrl-C stops)

Options:
  -n, --namespace NS   namespace of the executor (default: ${DEFAULT_NAMESPACE})
  -r, --redis URL      redis:// or rediss:// URL (default: $REDIS_URL, then ${DEFAULT_REDIS_URL})
      --cluster        connect as a Redis Cluster client (found out by itself otherwise)
      --json           machine-readable output: one JSON object (watch: one per line)
      --timeout MS     bound on connecting and on each command (default: ${DEFAULT_TIMEOUT_MS})
      --state S        list: only running or only completed keys
      --match GLOB     list: only keys matching GLOB (Redis glob: * ? [abc])
      --limit N        list: at most N keys (default: ${DEFAULT_LIMIT})
      --scan-limit N   list, stats (and each walk of watch on a cluster): visit at most about
                       N Redis keys (default: ${DEFAULT_SCAN_LIMIT})
      --rescan-ms MS   watch on a Redis Cluster: look for running executions every MS
                       (default: ${DEFAULT_RESCAN_MS}); see docs/cli.md for what it misses
      --force          forget: delete even while an execution runs (asks for confirmation)
  -y, --yes            forget --force: do not ask (for scripts)
  -h, --help           this help

Exit codes: 0 done, 1 failed (Redis unreachable, unreadable record), 2 usage error,
3 refused (forget of a running key without --force).
`;

/** @throws UsageError */
export function parseArguments(
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): CliArguments {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  const [commandName, ...operands] = positionals;
  if (values.help === true || commandName === 'help') {
    return { ...defaults(env), command: 'help' };
  }
  if (commandName === undefined) throw new UsageError('Expected a command');
  if (!isCommand(commandName)) throw new UsageError(`Unknown command "${commandName}"`);
  const command = commandName;
  const allowed = new Set([...COMMON, ...COMMAND_OPTIONS[command]]);
  for (const name of Object.keys(values) as OptionName[]) {
    if (!allowed.has(name)) throw new UsageError(`Option --${name} does not apply to ${command}`);
  }
  const takesKey = command === 'inspect' || command === 'forget';
  if (takesKey && operands.length !== 1) {
    throw new UsageError(`Expected exactly one key after ${command}, got ${operands.length}`);
  }
  if (!takesKey && operands.length > 0) {
    throw new UsageError(`Unexpected argument "${operands[0]}" after ${command}`);
  }
  const state = values.state;
  if (state !== undefined && state !== 'running' && state !== 'completed') {
    throw new UsageError(`Expected --state to be running or completed, got "${state}"`);
  }
  const namespace = values.namespace ?? DEFAULT_NAMESPACE;
  if (namespace.length === 0) throw new UsageError('Expected --namespace to be non-empty');
  return {
    ...defaults(env),
    command,
    key: takesKey ? operands[0] : undefined,
    namespace,
    redisUrl: values.redis ?? env.REDIS_URL ?? DEFAULT_REDIS_URL,
    cluster: values.cluster === true,
    json: values.json === true,
    timeoutMs: positiveInteger('--timeout', values.timeout, DEFAULT_TIMEOUT_MS),
    state,
    match: values.match,
    limit: positiveInteger('--limit', values.limit, DEFAULT_LIMIT),
    scanLimit: positiveInteger('--scan-limit', values['scan-limit'], DEFAULT_SCAN_LIMIT),
    rescanMs: positiveInteger('--rescan-ms', values['rescan-ms'], DEFAULT_RESCAN_MS),
    force: values.force === true,
    yes: values.yes === true,
  };
}

function defaults(
  env: Readonly<Record<string, string | undefined>>,
): Omit<CliArguments, 'command'> {
  return {
    key: undefined,
    namespace: DEFAULT_NAMESPACE,
    redisUrl: env.REDIS_URL ?? DEFAULT_REDIS_URL,
    cluster: false,
    json: false,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    state: undefined,
    match: undefined,
    limit: DEFAULT_LIMIT,
    scanLimit: DEFAULT_SCAN_LIMIT,
    rescanMs: DEFAULT_RESCAN_MS,
    force: false,
    yes: false,
  };
}

function isCommand(name: string): name is CommandName {
  return (COMMANDS as readonly string[]).includes(name);
}

function positiveInteger(option: string, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value) || value < 1) {
    throw new UsageError(`Expected ${option} to be a positive integer, got "${text}"`);
  }
  return value;
}
