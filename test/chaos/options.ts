// Command-line options of `npm run chaos`.
import { parseArgs } from 'node:util';

export const FAULT_KINDS = [
  'kill-mid',
  'kill-after',
  'stall',
  'client-kill',
  'pause',
  'restart',
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface ChaosOptions {
  readonly workers: number;
  readonly keys: number;
  /** Callers per key, dealt to distinct workers while dups <= workers. */
  readonly dups: number;
  /** Callers each worker keeps in flight. */
  readonly concurrency: number;
  /** How many times each enabled fault is injected. */
  readonly rounds: number;
  readonly faults: ReadonlySet<FaultKind>;
  readonly persistence: boolean;
  readonly leaseMs: number;
  readonly waitTimeoutMs: number;
  readonly storeTimeoutMs: number;
  readonly stallMs: number;
  readonly pauseMs: number;
  /** How long a restarted Redis stays down. */
  readonly downMs: number;
  readonly fnMinMs: number;
  readonly fnMaxMs: number;
  /** Give up on the storm after this long and report the callers that never settled. */
  readonly deadlineMs: number;
  readonly pgUrl: string;
  readonly json: string | undefined;
  /** Where to write the raw evidence and ledger rows, for digging into a failure. */
  readonly evidence: string | undefined;
  readonly quick: boolean;
}

export const USAGE = `npm run chaos -- [options]
  --quick               2 workers, 2,000 keys, each fault once (for CI; < 60 s)
  --workers N           worker processes (default 4)
  --keys N              distinct keys (default 20000)
  --dups N              callers per key, on distinct workers (default 3)
  --concurrency N       callers in flight per worker (default 32)
  --rounds N            injections of each fault (default 3; --quick: 1)
  --no-kill-mid         no SIGKILL of a worker inside fn
  --no-kill-after       no SIGKILL between fn's return and the stored completion
  --no-stall            no event-loop stall past the lease
  --no-client-kill      no CLIENT KILL of a worker's connections
  --no-pause            no CLIENT PAUSE
  --no-restart          no Redis restart
  --no-persistence      run Redis without AOF (a restart loses every record)
  --lease-ms N          executor leaseMs (default 2000)
  --wait-timeout-ms N   executor waitTimeoutMs (default 10000)
  --store-timeout-ms N  executor storeTimeoutMs (default 2000)
  --stall-ms N          length of a stall (default 3000)
  --pause-ms N          length of a CLIENT PAUSE (default 500)
  --down-ms N           how long Redis stays down in a restart (default 1000)
  --deadline-ms N       give up on the storm after this long (default 600000; --quick: 50000)
  --pg URL              PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
  --json PATH           also write the report as JSON
  --evidence PATH       write the raw evidence (ledger rows, caller outcomes, fault log) as JSON
`;

export function parseOptions(argv: readonly string[]): ChaosOptions {
  const { values } = parseArgs({
    args: [...argv],
    strict: true,
    allowNegative: false,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      workers: { type: 'string' },
      keys: { type: 'string' },
      dups: { type: 'string' },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      'no-kill-mid': { type: 'boolean' },
      'no-kill-after': { type: 'boolean' },
      'no-stall': { type: 'boolean' },
      'no-client-kill': { type: 'boolean' },
      'no-pause': { type: 'boolean' },
      'no-restart': { type: 'boolean' },
      'no-persistence': { type: 'boolean' },
      'lease-ms': { type: 'string' },
      'wait-timeout-ms': { type: 'string' },
      'store-timeout-ms': { type: 'string' },
      'stall-ms': { type: 'string' },
      'pause-ms': { type: 'string' },
      'down-ms': { type: 'string' },
      'deadline-ms': { type: 'string' },
      pg: { type: 'string' },
      json: { type: 'string' },
      evidence: { type: 'string' },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const int = (name: keyof typeof values, fallback: number, min = 1): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new Error(`Expected --${name} to be an integer of at least ${min}, got ${String(raw)}`);
    }
    return value;
  };
  const faults = new Set<FaultKind>(FAULT_KINDS.filter((kind) => values[`no-${kind}`] !== true));
  const leaseMs = int('lease-ms', 2_000, 100);
  return {
    quick,
    workers: int('workers', quick ? 2 : 4),
    keys: int('keys', quick ? 2_000 : 20_000),
    dups: int('dups', 3),
    concurrency: int('concurrency', quick ? 16 : 32),
    rounds: int('rounds', quick ? 1 : 3, 0),
    faults,
    persistence: values['no-persistence'] !== true,
    leaseMs,
    waitTimeoutMs: int('wait-timeout-ms', 10_000),
    storeTimeoutMs: int('store-timeout-ms', 2_000),
    stallMs: int('stall-ms', Math.round(leaseMs * 1.5)),
    pauseMs: int('pause-ms', 500),
    downMs: int('down-ms', 1_000, 0),
    fnMinMs: 2,
    fnMaxMs: 10,
    deadlineMs: int('deadline-ms', quick ? 50_000 : 600_000),
    pgUrl: values.pg ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    json: values.json,
    evidence: values.evidence,
  };
}
