/** Every figure one `npm run bench` produced; the report is drawn from it alone. */
export interface Results {
  machine: {
    cpus: number;
    cpuModel: string;
    node: string;
    redis: string;
    ioredis: string;
    /** The Valkey the server-CPU scenario built and ran, when it ran. */
    valkey?: string;
  };
  date: string;
  quick: boolean;
  fresh: ThroughputRow[];
  /** Each ceiling configuration as measured (the ceiling row in `fresh` is the fastest). */
  ceilingConfigs: ThroughputRow[];
  replay: ThroughputRow[];
  replayBaselineConfigs: ThroughputRow[];
  waiters: WaiterRow[];
  commands: CommandRow[];
  redisMemory: RedisMemoryRow[];
  processMemory: ProcessMemoryRow[];
  inProcess: ThroughputRow[];
  cluster: ThroughputRow[];
  /** Redis (and Valkey) CPU per run beside the raw loops (absent in results of older runs). */
  serverCpu: ServerCpuRow[];
  /** The PostgreSQL store beside its raw ceiling and the Redis store (absent when not run). */
  postgres?: PostgresResults;
}

/** What bench/scenarios/postgres.ts measured. */
export interface PostgresResults {
  /** `SHOW server_version` of the PostgreSQL measured. */
  server: string;
  /** `max` of every pg.Pool in the scenario (the executor's and the raw loops'). */
  poolSize: number;
  /** Fresh runs: the executor on each store, and the raw ceiling (fastest configuration). */
  fresh: ThroughputRow[];
  /** Each raw configuration as measured (the ceiling row in `fresh` is the fastest). */
  ceilingConfigs: ThroughputRow[];
  /** Replays: the executor on each store, and a raw SELECT + decode. */
  replay: ThroughputRow[];
  /** As the waiters scenario's rows; `commandsPerCaller` is not counted (NaN). */
  waiters: WaiterRow[];
}

export interface ServerCpuRow {
  /** `redis` (the bench's server) or `valkey <version>`. */
  server: string;
  subject: string;
  kind: 'fresh' | 'replay';
  concurrency: number;
  opsPerSec: number;
  /** Server CPU (user + system) per run, µs, from INFO cpu deltas. */
  cpuMicrosPerRun: number;
}

export interface ThroughputRow {
  subject: string;
  concurrency: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Calls that rejected, e.g. a peer answering a duplicate with an error. */
  errors: number;
  /** Free text: topology, configuration. */
  note?: string;
}

export interface WaiterRow {
  subject: string;
  waiters: number;
  processes: number;
  /** Delay from the end of the winner's fn to each waiter's resolution, ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** Callers that got the value. */
  settled: number;
  /** Callers answered "still in progress" instead of waiting. */
  rejected: number;
  /** Callers that failed otherwise. */
  failed: number;
  /** Redis commands of the whole round divided by the callers. */
  commandsPerCaller: number;
  executions: number;
}

export interface CommandRow {
  subject: string;
  kind: 'fresh' | 'replay';
  /** Calls per run by command, from INFO commandstats deltas. */
  perRun: Record<string, number>;
  commandsPerRun: number;
  /** Client-to-server writes per run at concurrency 1, counted by a TCP proxy. */
  roundTripsPerRun: number;
}

export interface RedisMemoryRow {
  valueBytes: number;
  /** MEMORY USAGE of a plain SET of the same value under a key of the same length. */
  rawUsage: number;
  /** Length of the executor's encoded record (STRLEN). */
  recordBytes: number;
  /** MEMORY USAGE of the executor's completed record. */
  recordUsage: number;
}

export interface ProcessMemoryRow {
  subject: string;
  runs: number;
  heapUsedMB: number;
  rssMB: number;
}

export function emptyResults(machine: Results['machine'], quick: boolean): Results {
  return {
    machine,
    date: new Date().toISOString(),
    quick,
    fresh: [],
    ceilingConfigs: [],
    replay: [],
    replayBaselineConfigs: [],
    waiters: [],
    commands: [],
    redisMemory: [],
    processMemory: [],
    inProcess: [],
    cluster: [],
    serverCpu: [],
  };
}
