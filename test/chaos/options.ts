// Command-line options of `npm run chaos`, and the catalogue of faults the harness can inject.
import { parseArgs } from 'node:util';

export const STORE_KINDS = ['redis', 'cluster', 'postgres'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];

/**
 * Every fault the harness knows, in the order the report lists them. `worker` faults are armed
 * in a worker and land inside its fn (see worker.ts); `server` faults are run by the parent
 * against the store's server (redis-faults.ts, postgres-faults.ts). To add one: an entry here,
 * its injection in the store's fault set, and what it explains in classify.ts.
 */
export const FAULTS = [
  {
    kind: 'kill-mid',
    target: 'worker',
    stores: ['redis', 'cluster', 'postgres'],
    without: 'no SIGKILL of a worker inside fn',
  },
  {
    kind: 'kill-after',
    target: 'worker',
    stores: ['redis', 'cluster', 'postgres'],
    without: "no SIGKILL between fn's return and the stored completion",
  },
  {
    kind: 'stall',
    target: 'worker',
    stores: ['redis', 'cluster', 'postgres'],
    without: 'no event-loop stall past the lease',
  },
  {
    kind: 'client-kill',
    target: 'server',
    stores: ['redis', 'cluster'],
    without: "no CLIENT KILL of a worker's connections",
  },
  { kind: 'pause', target: 'server', stores: ['redis', 'cluster'], without: 'no CLIENT PAUSE' },
  { kind: 'restart', target: 'server', stores: ['redis'], without: 'no Redis restart' },
  {
    kind: 'partition',
    target: 'server',
    stores: ['redis'],
    without: 'no blackhole of every connection of one worker, longer than the lease',
  },
  {
    kind: 'sub-partition',
    target: 'server',
    stores: ['redis'],
    without: 'no blackhole of the subscriber connections while commands pass',
  },
  {
    kind: 'latency',
    target: 'server',
    stores: ['redis'],
    without: 'no latency spike (+100-500 ms) on every connection',
  },
  {
    kind: 'master-kill',
    target: 'server',
    stores: ['cluster'],
    without: 'no SIGKILL of a master (its replica fails over)',
  },
  {
    kind: 'migrate',
    target: 'server',
    stores: ['cluster'],
    without: 'no slot migration while keys are in flight',
  },
  {
    kind: 'backend-kill',
    target: 'server',
    stores: ['postgres'],
    without: "no pg_terminate_backend of the workers' connections",
  },
  {
    kind: 'lock',
    target: 'server',
    stores: ['postgres'],
    without: "no LOCK TABLE of the store's table",
  },
  {
    kind: 'unreachable',
    target: 'server',
    stores: ['postgres'],
    without: 'no cut or blackhole of the proxy to PostgreSQL',
  },
] as const satisfies readonly {
  readonly kind: string;
  readonly target: 'worker' | 'server';
  readonly stores: readonly StoreKind[];
  readonly without: string;
}[];

export type FaultKind = (typeof FAULTS)[number]['kind'];
export type WorkerFaultKind = Extract<(typeof FAULTS)[number], { target: 'worker' }>['kind'];
export type ServerFaultKind = Extract<(typeof FAULTS)[number], { target: 'server' }>['kind'];
export const FAULT_KINDS: readonly FaultKind[] = FAULTS.map((fault) => fault.kind);

/** The faults that apply to `store`, in catalogue order. */
export function faultsOf(store: StoreKind): FaultKind[] {
  return FAULTS.filter((fault) => (fault.stores as readonly StoreKind[]).includes(store)).map(
    (fault) => fault.kind,
  );
}

export function isWorkerFault(kind: FaultKind): kind is WorkerFaultKind {
  return FAULTS.some((fault) => fault.kind === kind && fault.target === 'worker');
}

export interface ChaosOptions {
  /** The store the executors run on. */
  readonly store: StoreKind;
  /** PostgreSQL only: fn runs in `transactional(store, …)` and writes its ledger row there. */
  readonly transactional: boolean;
  readonly workers: number;
  readonly keys: number;
  /** Callers per key, dealt to distinct workers while dups <= workers. */
  readonly dups: number;
  /** Callers each worker keeps in flight. */
  readonly concurrency: number;
  /** How many times each enabled fault is injected. */
  readonly rounds: number;
  /** The enabled faults: those of the store, less the ones turned off. */
  readonly faults: ReadonlySet<FaultKind>;
  readonly persistence: boolean;
  readonly leaseMs: number;
  readonly waitTimeoutMs: number;
  readonly storeTimeoutMs: number;
  readonly stallMs: number;
  /** How long a partition (`partition`, `sub-partition`) lasts. */
  readonly partitionMs: number;
  /** How long a latency spike lasts. */
  readonly latencyMs: number;
  readonly pauseMs: number;
  /** How long a restarted Redis stays down, or PostgreSQL stays unreachable. */
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
  /**
   * A soak: the storm paced to `soakRate` keys a second for this long, faults spread over it,
   * memory sampled every `sampleMs`; undefined for a storm.
   */
  readonly soakMs: number | undefined;
  readonly soakRate: number;
  readonly sampleMs: number;
  /** Where the soak's memory chart goes (SVG). */
  readonly chart: string;
}

const faultFlags = FAULTS.map(
  (fault) =>
    `  ${`--no-${fault.kind}`.padEnd(22)}${fault.without}${fault.stores.length === 1 ? ` (${fault.stores[0]})` : ''}\n`,
).join('');

export const USAGE = `npm run chaos -- [options]
  --quick               2 workers, 12,000 keys (cluster 8,000, postgres 2,000), each
                        fault once (for CI; < 60 s)
  --store S             redis (default), cluster or postgres: the store the executors run on
  --cluster             the same as --store cluster: a local 3-master, 3-replica Redis Cluster
  --soak DURATION       a soak (e.g. 20m, 90s): steady load of --rate keys/s for that long,
                        faults at intervals, worker and Redis memory sampled and charted
  --rate N              soak: keys started per second over all workers (default 100)
  --sample-ms N         soak: memory sampling interval (default 10000)
  --chart PATH          soak: the memory chart (default docs/chaos/soak.svg)
  --transactional       postgres: fn runs in transactional(store, …), its ledger row in the
                        transaction that stores the record
  --workers N           worker processes (default 4)
  --keys N              distinct keys (default 20000)
  --dups N              callers per key, on distinct workers (default 3)
  --concurrency N       callers in flight per worker (default 32)
  --rounds N            injections of each fault (default 3; --quick: 1)
${faultFlags}  --no-persistence      run Redis without AOF (a restart loses every record)
  --lease-ms N          executor leaseMs (default 2000)
  --wait-timeout-ms N   executor waitTimeoutMs (default 10000)
  --store-timeout-ms N  the store's command / query timeout (default 2000)
  --stall-ms N          length of a stall (default 3000)
  --partition-ms N      length of a partition (default 1.5 x lease)
  --latency-ms N        length of a latency spike (default 3000)
  --pause-ms N          length of a CLIENT PAUSE or LOCK TABLE (default 500)
  --down-ms N           how long Redis stays down in a restart (default 1000), or PostgreSQL
                        unreachable (default 3000)
  --deadline-ms N       give up on the storm after this long (default 600000; --quick: 50000)
  --pg URL              PostgreSQL server (default postgres://postgres@127.0.0.1:5432/postgres)
  --json PATH           also write the report as JSON
  --evidence PATH       write the raw evidence (ledger rows, caller outcomes, fault log) as JSON
`;

/**
 * Keys of a quick run: enough for the storm to outlast the store's server faults, which run one
 * at a time (on Redis the partitions and the latency spike take 3 s each).
 */
const QUICK_KEYS: Record<StoreKind, number> = { redis: 12_000, cluster: 8_000, postgres: 2_000 };

export function parseOptions(argv: readonly string[]): ChaosOptions {
  const parsed = parseArgs({
    args: [...argv],
    strict: true,
    allowNegative: false,
    options: {
      help: { type: 'boolean' },
      quick: { type: 'boolean' },
      store: { type: 'string' },
      cluster: { type: 'boolean' },
      soak: { type: 'string' },
      rate: { type: 'string' },
      'sample-ms': { type: 'string' },
      chart: { type: 'string' },
      'partition-ms': { type: 'string' },
      'latency-ms': { type: 'string' },
      transactional: { type: 'boolean' },
      workers: { type: 'string' },
      keys: { type: 'string' },
      dups: { type: 'string' },
      concurrency: { type: 'string' },
      rounds: { type: 'string' },
      ...Object.fromEntries(
        FAULTS.map((fault) => [`no-${fault.kind}`, { type: 'boolean' as const }]),
      ),
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
  // The fault flags are built from the catalogue: read every value by its name.
  const values = parsed.values as Record<string, string | boolean | undefined>;
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const quick = values.quick === true;
  const int = (name: string, fallback: number, min = 1): number => {
    const raw = values[name];
    if (raw === undefined) return fallback;
    const value = Number(raw);
    if (!Number.isSafeInteger(value) || value < min) {
      throw new Error(`Expected --${name} to be an integer of at least ${min}, got ${String(raw)}`);
    }
    return value;
  };
  if (values.cluster === true && values.store !== undefined && values.store !== 'cluster') {
    throw new Error('--cluster and --store are exclusive');
  }
  const store = (values.cluster === true ? 'cluster' : (values.store ?? 'redis')) as StoreKind;
  if (!STORE_KINDS.includes(store)) {
    throw new Error(
      `Expected --store to be one of ${STORE_KINDS.join(', ')}, got ${String(values.store)}`,
    );
  }
  const applicable = faultsOf(store);
  for (const fault of FAULTS) {
    if (values[`no-${fault.kind}`] === true && !applicable.includes(fault.kind)) {
      throw new Error(`--no-${fault.kind} applies to --store ${fault.stores.join(', ')} only`);
    }
  }
  if (values.transactional === true && store !== 'postgres') {
    throw new Error('--transactional applies to --store postgres only');
  }
  if (values['no-persistence'] === true && store !== 'redis') {
    throw new Error('--no-persistence applies to --store redis only');
  }
  const faults = new Set<FaultKind>(applicable.filter((kind) => values[`no-${kind}`] !== true));
  const leaseMs = int('lease-ms', 2_000, 100);
  const soakMs = values.soak === undefined ? undefined : parseDuration(String(values.soak));
  if (soakMs !== undefined && quick) throw new Error('--soak and --quick are exclusive');
  if (soakMs !== undefined && store !== 'redis')
    throw new Error('--soak applies to --store redis only');
  const soakRate = int('rate', 100);
  const workers = int('workers', quick ? 2 : 4);
  return {
    soakMs,
    soakRate,
    sampleMs: int('sample-ms', 10_000, 100),
    chart: (values.chart as string | undefined) ?? 'docs/chaos/soak.svg',
    partitionMs: int('partition-ms', Math.round(leaseMs * 1.5)),
    latencyMs: int('latency-ms', 3_000),
    store,
    transactional: values.transactional === true,
    quick,
    workers,
    keys:
      soakMs === undefined
        ? int('keys', quick ? QUICK_KEYS[store] : 20_000)
        : Math.ceil((soakRate * soakMs) / 1_000),
    dups: int('dups', 3),
    concurrency: int('concurrency', quick ? 16 : 32),
    rounds: int(
      'rounds',
      quick ? 1 : soakMs === undefined ? 3 : Math.max(1, Math.round(soakMs / 300_000)),
      0,
    ),
    faults,
    persistence: values['no-persistence'] !== true,
    leaseMs,
    waitTimeoutMs: int('wait-timeout-ms', 10_000),
    storeTimeoutMs: int('store-timeout-ms', 2_000),
    stallMs: int('stall-ms', Math.round(leaseMs * 1.5)),
    pauseMs: int('pause-ms', 500),
    downMs: int('down-ms', store === 'postgres' ? 3_000 : 1_000, 0),
    fnMinMs: 2,
    fnMaxMs: 10,
    deadlineMs: int(
      'deadline-ms',
      quick ? (store === 'cluster' ? 90_000 : 50_000) : (soakMs ?? 0) + 600_000,
    ),
    pgUrl: (values.pg as string | undefined) ?? 'postgres://postgres@127.0.0.1:5432/postgres',
    json: values.json as string | undefined,
    evidence: values.evidence as string | undefined,
  };
}

/** `20m`, `90s`, `1h`, or plain milliseconds. */
function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (match === null)
    throw new Error(`Expected --soak to be a duration like 20m or 90s, got ${text}`);
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[match[2] ?? 'ms'] ?? 1;
  return Math.round(Number(match[1]) * unit);
}
