import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { heapChart, renderSvg, throughputChart, waiterChart } from './charts.js';
import type { Results, ThroughputRow, WaiterRow } from './results.js';

const EXECUTOR = 'idempotent-executor';
const CEILING = 'ceiling (raw SET NX PX + SET PX)';
const FLOOR = 'protocol floor (raw SET NX GET + complete script)';
const REPLAY_BASELINE = 'baseline (raw GET + decode)';
const PEERS_EXCLUDED = new Set([EXECUTOR, CEILING, FLOOR, REPLAY_BASELINE]);

const int = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '—');
const ms = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '—');
const ratio = (n: number) => (Number.isFinite(n) ? n.toFixed(2) : '—');

function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const align = header.map((_, i) => (i === 0 ? '---' : '---:'));
  return [header, align, ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n');
}

function find(rows: readonly ThroughputRow[], subject: string, concurrency: number) {
  return rows.find((row) => row.subject === subject && row.concurrency === concurrency);
}

/** The figures the performance contract names, each with its target and whether it was met. */
export function contractTable(results: Results): string {
  const ours = find(results.fresh, EXECUTOR, 64);
  const ceiling = find(results.fresh, CEILING, 64);
  const floor = find(results.fresh, FLOOR, 64);
  const bestOf = (rows: readonly ThroughputRow[]) =>
    rows
      .filter((row) => row.concurrency === 64 && !PEERS_EXCLUDED.has(row.subject))
      .reduce<ThroughputRow | undefined>(
        (best, row) => (best === undefined || row.opsPerSec > best.opsPerSec ? row : best),
        undefined,
      );
  const bestPeer = bestOf(results.fresh);
  const ourReplays = find(results.replay, EXECUTOR, 64);
  const replayBaseline = find(results.replay, REPLAY_BASELINE, 64);
  const bestReplayPeer = bestOf(results.replay);
  const freshTrips = results.commands.find((r) => r.subject === EXECUTOR && r.kind === 'fresh');
  const replayTrips = results.commands.find((r) => r.subject === EXECUTOR && r.kind === 'replay');
  const waiters = results.waiters.filter((row) => row.subject === EXECUTOR);
  const heap = results.processMemory.filter((row) => row.subject === EXECUTOR);
  const heapFirst = heap[1] ?? heap[0];
  const heapLast = heap[heap.length - 1];
  const record = results.redisMemory.find((row) => row.valueBytes === 1024);
  const yes = (met: boolean | undefined) => (met === undefined ? '—' : met ? 'met' : '**not met**');
  const rows: string[][] = [];
  /** `label`: our throughput over `base`'s, met at `target`. */
  const ratioRow = (
    label: string,
    target: number,
    ourRow: ThroughputRow | undefined,
    base: ThroughputRow | undefined,
  ): void => {
    if (ourRow === undefined || base === undefined) return;
    const r = ourRow.opsPerSec / base.opsPerSec;
    rows.push([
      label,
      `≥ ${target.toFixed(2)}`,
      `${ratio(r)} (${int(ourRow.opsPerSec)} / ${int(base.opsPerSec)})`,
      yes(r >= target),
    ]);
  };
  /** `label`: our throughput beside the fastest peer's, met when ours is more. */
  const peerRow = (
    label: string,
    ourRow: ThroughputRow | undefined,
    peer: ThroughputRow | undefined,
  ): void => {
    if (ourRow === undefined || peer === undefined) return;
    rows.push([
      label,
      'more',
      `${int(ourRow.opsPerSec)} vs ${int(peer.opsPerSec)} (${peer.subject})`,
      yes(ourRow.opsPerSec > peer.opsPerSec),
    ]);
  };
  if (freshTrips !== undefined) {
    rows.push([
      'round trips per fresh run',
      '2',
      ratio(freshTrips.roundTripsPerRun),
      yes(freshTrips.roundTripsPerRun <= 2.05),
    ]);
  }
  if (replayTrips !== undefined) {
    rows.push([
      'round trips per replay',
      '1',
      ratio(replayTrips.roundTripsPerRun),
      yes(replayTrips.roundTripsPerRun <= 1.05),
    ]);
  }
  ratioRow('fresh runs/s at concurrency 64 / protocol floor', 0.95, ours, floor);
  const oursAt1 = find(results.fresh, EXECUTOR, 1);
  const floorAt1 = find(results.fresh, FLOOR, 1);
  if (oursAt1 !== undefined && floorAt1 !== undefined) {
    rows.push([
      'fresh run p50 latency at concurrency 1 / protocol floor',
      'about 1',
      `${ratio(oursAt1.p50Ms / floorAt1.p50Ms)} (${ms(oursAt1.p50Ms)} / ${ms(floorAt1.p50Ms)} ms)`,
      '—',
    ]);
  }
  ratioRow('replays/s at concurrency 64 / raw GET + decode', 0.8, ourReplays, replayBaseline);
  peerRow('replays/s at concurrency 64 vs the fastest peer', ourReplays, bestReplayPeer);
  for (const kind of ['fresh', 'replay'] as const) {
    const memory = results.inProcess.find((row) =>
      row.subject.startsWith(`MemoryStore: ${kind === 'fresh' ? 'fresh' : 'replays'}`),
    );
    if (memory !== undefined) {
      rows.push([
        `in-process ${kind === 'fresh' ? 'fresh runs' : 'replays'}/s on MemoryStore (our own JavaScript)`,
        kind === 'fresh' ? '≥ 228,000 (2 × 114,000)' : '≥ 472,000 (2 × 236,000)',
        int(memory.opsPerSec),
        yes(memory.opsPerSec >= (kind === 'fresh' ? 228_000 : 472_000)),
      ]);
    }
  }
  for (const row of (results.serverCpu ?? []).filter((r) => r.subject.startsWith(EXECUTOR))) {
    const raw = (results.serverCpu ?? []).find(
      (r) =>
        r.server === row.server &&
        r.kind === row.kind &&
        r.subject === (row.kind === 'fresh' ? 'raw SET NX PX + SET PX' : 'raw GET + decode'),
    );
    rows.push([
      `server CPU per ${row.kind === 'fresh' ? 'fresh run' : 'replay'} on ${row.server} ${row.subject.slice(EXECUTOR.length + 1)}`,
      'reported beside the raw loop',
      `${row.cpuMicrosPerRun.toFixed(1)} µs${raw === undefined ? '' : ` vs ${raw.cpuMicrosPerRun.toFixed(1)} µs raw`}`,
      '—',
    ]);
  }
  ratioRow('fresh runs/s at concurrency 64 / ceiling', 0.8, ours, ceiling);
  peerRow('fresh runs/s at concurrency 64 vs the fastest peer', ours, bestPeer);
  for (const row of waiters) {
    rows.push([
      `waiters (${row.waiters} callers): delay p99, commands per caller`,
      'about one round trip; a handful',
      `${ms(row.p99Ms)} ms, ${ratio(row.commandsPerCaller)}`,
      '—',
    ]);
  }
  if (heapFirst !== undefined && heapLast !== undefined) {
    rows.push([
      `heap after GC over ${int(heapLast.runs)} runs`,
      'no growth',
      `${heapFirst.heapUsedMB.toFixed(1)} → ${heapLast.heapUsedMB.toFixed(1)} MiB`,
      yes(heapLast.heapUsedMB - heapFirst.heapUsedMB < 2),
    ]);
  }
  if (record !== undefined) {
    rows.push([
      'Redis memory of a 1 KiB record beyond a plain SET',
      'small beside the payload',
      `${int(record.recordUsage - record.rawUsage)} B`,
      '—',
    ]);
  }
  return table(['figure', 'target', 'measured', ''], rows);
}

function throughputTable(rows: readonly ThroughputRow[], against?: string): string {
  return table(
    [
      'subject',
      'concurrency',
      'runs/s',
      'p50 ms',
      'p99 ms',
      'rejected',
      ...(against ? [`/ ${against}`] : []),
    ],
    rows.map((row) => {
      const base = against === undefined ? undefined : find(rows, against, row.concurrency);
      return [
        row.note === undefined ? row.subject : `${row.subject} (${row.note})`,
        String(row.concurrency),
        int(row.opsPerSec),
        ms(row.p50Ms),
        ms(row.p99Ms),
        int(row.errors),
        ...(base === undefined ? [] : [ratio(row.opsPerSec / base.opsPerSec)]),
      ];
    }),
  );
}

const byConcurrency = (rows: readonly ThroughputRow[]) =>
  [...rows].sort((a, b) => a.concurrency - b.concurrency || b.opsPerSec - a.opsPerSec);

/** The report printed at the end of a run: the contract figures and the main tables. */
export function consoleReport(results: Results): string {
  return [
    contractTable(results),
    '',
    'Fresh runs:',
    throughputTable(byConcurrency(results.fresh), CEILING),
    '',
    'Replays:',
    throughputTable(byConcurrency(results.replay), 'baseline (raw GET + decode)'),
    '',
    'Server CPU per run:',
    serverCpuTable(results),
    '',
    'In-process (MemoryStore):',
    throughputTable(results.inProcess),
    '',
    'Waiters:',
    waitersTable(results),
    '',
    'Cluster:',
    throughputTable(results.cluster),
    ...(results.postgres === undefined
      ? []
      : [
          '',
          'PostgreSQL store, fresh runs:',
          throughputTable(byConcurrency(results.postgres.fresh), PG_CEILING),
          '',
          'PostgreSQL store, replays:',
          throughputTable(byConcurrency(results.postgres.replay), PG_REPLAY_BASELINE),
          '',
          'PostgreSQL store, waiters:',
          postgresWaitersTable(results.postgres.waiters),
        ]),
  ].join('\n');
}

const PG_CEILING = 'ceiling (raw INSERT … ON CONFLICT + UPDATE)';
const PG_REPLAY_BASELINE = 'baseline (raw SELECT + decode)';

function postgresWaitersTable(rows: readonly WaiterRow[]): string {
  return table(
    ['subject', 'callers', 'p50 ms', 'p99 ms', 'max ms', 'got the value', 'failed', 'fn ran'],
    rows.map((row) => [
      row.subject,
      String(row.waiters),
      ms(row.p50Ms),
      ms(row.p99Ms),
      ms(row.maxMs),
      int(row.settled),
      int(row.failed),
      int(row.executions),
    ]),
  );
}

/** The section of bench/scenarios/postgres.ts, when it ran. */
function postgresSection(results: Results): string {
  const pg = results.postgres;
  if (pg === undefined) return '';
  return `## PostgreSQL store

The executor on \`PostgresStore\` (PostgreSQL ${pg.server} on this machine, a \`pg.Pool\` of
${pg.poolSize}), beside the executor on this run's Redis, measured in the same alternating rounds.
The **ceiling** is a raw loop of the SQL a fresh run needs on a table of the same shape — the claim
(\`INSERT … ON CONFLICT (key_hash) DO UPDATE … WHERE expired\`), then the completion as a
compare-and-set on the token (\`UPDATE … WHERE token = $2 AND record IS NULL\`) with a record
encoded beforehand, no notification — on a pool of the same size, the faster of unnamed and
prepared statements. The **protocol floor** sends the store's own statements raw (the completion
with its \`pg_notify\`; a replay's refused claim, then its read). Every statement commits on its
own (\`synchronous_commit\` as the server has it). See [postgres.md](postgres.md#benchmarks).

${throughputTable(byConcurrency(pg.fresh), PG_CEILING)}

The ceiling's configurations:

${throughputTable(byConcurrency(pg.ceilingConfigs))}

Replays, beside a raw \`SELECT\` of the row and a msgpack decode:

${throughputTable(byConcurrency(pg.replay), PG_REPLAY_BASELINE)}

Waiters: one key whose fn takes 200 ms, the callers split over two processes, on each store.

${postgresWaitersTable(pg.waiters)}

`;
}

function serverCpuTable(results: Results): string {
  return table(
    ['server', 'subject', 'kind', 'runs/s at 64', 'server CPU per run'],
    (results.serverCpu ?? []).map((row) => [
      row.server,
      row.subject,
      row.kind,
      int(row.opsPerSec),
      `${row.cpuMicrosPerRun.toFixed(1)} µs`,
    ]),
  );
}

function waitersTable(results: Results): string {
  return table(
    [
      'subject',
      'callers',
      'p50 ms',
      'p99 ms',
      'max ms',
      'got the value',
      'told "in progress"',
      'failed',
      'fn ran',
      'commands per caller',
    ],
    results.waiters.map((row) => [
      row.subject,
      String(row.waiters),
      ms(row.p50Ms),
      ms(row.p99Ms),
      ms(row.maxMs),
      int(row.settled),
      int(row.rejected),
      int(row.failed),
      int(row.executions),
      ratio(row.commandsPerCaller),
    ]),
  );
}

/** Writes `docs/benchmarks.md` and its SVG charts under `docsDir`. */
export async function writeReport(
  results: Results,
  docsDir: string,
  analysisFile: string,
): Promise<string> {
  const chartDir = join(docsDir, 'benchmarks');
  await mkdir(chartDir, { recursive: true });
  const charts: Record<string, string> = {
    'fresh.svg': await renderSvg(
      throughputChart('Fresh runs on unique keys (~100-byte value)', results.fresh),
    ),
    'replay.svg': await renderSvg(throughputChart('Replays of completed keys', results.replay)),
    'waiters.svg': await renderSvg(waiterChart(results.waiters)),
    'heap.svg': await renderSvg(heapChart(results.processMemory)),
  };
  for (const [name, svg] of Object.entries(charts)) await writeFile(join(chartDir, name), svg);
  const analysis = await readFile(analysisFile, 'utf8');
  const m = results.machine;
  const commands = table(
    ['subject', 'kind', 'commands per run', 'round trips per run', 'by command'],
    results.commands.map((row) => [
      row.subject,
      row.kind,
      ratio(row.commandsPerRun),
      ratio(row.roundTripsPerRun),
      Object.entries(row.perRun)
        // A one-off call spread over many runs (a script loaded once) rounds to nothing.
        .filter(([, calls]) => calls >= 0.005)
        .map(([command, calls]) => `${command} ${ratio(calls)}`)
        .join(', '),
    ]),
  );
  const memory = table(
    ['value', 'encoded record', 'plain SET (MEMORY USAGE)', 'executor record', 'difference'],
    results.redisMemory.map((row) => [
      `${int(row.valueBytes)} B`,
      `${int(row.recordBytes)} B`,
      `${int(row.rawUsage)} B`,
      `${int(row.recordUsage)} B`,
      `${int(row.recordUsage - row.rawUsage)} B`,
    ]),
  );
  const heap = table(
    ['subject', 'runs', 'heap after GC (MiB)', 'RSS (MiB)'],
    results.processMemory.map((row) => [
      row.subject,
      int(row.runs),
      row.heapUsedMB.toFixed(1),
      row.rssMB.toFixed(0),
    ]),
  );
  const doc = `# Benchmarks

Generated by \`npm run bench\` — do not edit by hand (the notes at the end come from
[\`bench/analysis.md\`](../bench/analysis.md)).${results.quick ? '\n\n**This is a `--quick` run: the sizes are too small for the figures to mean anything.**' : ''}

- Date: ${results.date}
- Machine: ${m.cpus} × ${m.cpuModel}; Node ${m.node}; Redis ${m.redis} (a \`redis-server\` the bench
  starts for itself, no persistence); ioredis ${m.ioredis}
- Reproduce: \`npm run bench\` (about ${results.quick ? 'a minute' : 'ten minutes'}); \`npm run bench -- --quick\` runs every
  scenario at a size for CI.

Every throughput figure is the median of several rounds, the contenders measured in
alternating order within the same process, against the same Redis, after a warm-up. The
executor is handed a default-configured \`new Redis(url)\`, as users do, and is the package as
users run it: the compiled \`dist/\` imported by its name (\`npm run bench\` builds first), never the
TypeScript sources through tsx, whose naming wrapper around every closure made the executor
measure up to half as fast as it is.

## The performance contract

${contractTable(results)}

## Fresh runs

Unique keys; fn returns a ~100-byte object. The **protocol floor** is a raw loop of exactly the
commands a fresh run sends — \`SET key token NX PX ms GET\`, then the complete script by
\`EVALSHA\` with a record encoded once beforehand — on a connection configured like the
executor's own (RESP2, auto-pipelining, every command bounded by a 2 s timeout), with none of our JavaScript. The **ceiling** is a raw ioredis loop of the two
commands a fresh run needs (\`SET key lease NX PX\`, then \`SET key value PX\` with a value encoded
once beforehand), in the fastest of four ioredis configurations at each concurrency.

![fresh runs](benchmarks/fresh.svg)

${throughputTable(byConcurrency(results.fresh), CEILING)}

The ceiling's configurations:

${throughputTable(byConcurrency(results.ceilingConfigs))}

## Replays

Keys completed beforehand by each subject; the baseline is a raw \`GET\` and a msgpack decode of
the same value, fastest ioredis configuration.

![replays](benchmarks/replay.svg)

${throughputTable(byConcurrency(results.replay), 'baseline (raw GET + decode)')}

## Server CPU per run

Redis's own CPU (\`used_cpu_user\` + \`used_cpu_sys\` from \`INFO cpu\`) over a measurement of
fresh runs or replays at concurrency 64, divided by its runs: in production the server is the
shared, single-threaded resource. On the bench's Redis the completion is the complete script; on
Valkey ${results.machine.valkey ?? '8.1'} (built from Debian trixie's source package by
\`test/tools/valkey.sh\`) the store detects \`SET … IFEQ\` and completes with it, then publishes
the record once the reply says it was stored. The raw loops run on a connection configured like
the executor's.

${serverCpuTable(results)}

## Waiters

One key whose fn takes 200 ms; the callers are split over ${results.waiters[0]?.processes ?? 2} processes and all call at once.
The delay runs from the end of the winner's fn to each other caller's resolution (it includes
storing the outcome). Commands are the whole round's, from \`INFO commandstats\`, divided by the
callers. A subject that answers duplicates with an error instead of waiting shows them as told
"in progress".

![waiters](benchmarks/waiters.svg)

${waitersTable(results)}

## Redis commands and round trips

One run at a time after a warm-up; commands from \`INFO commandstats\` deltas, round trips as
client-to-server writes counted by a TCP proxy between the subject and Redis.

${commands}

## Redis memory per record

\`MEMORY USAGE\` of a completed record holding a string, against a plain \`SET\` of the same string
under a key of the same length. Redis allocates in size classes (jemalloc), so a few bytes of
record header often cost nothing.

${memory}

## Process memory

Fresh runs at concurrency 64 (one in ten a replay), the heap measured after a full GC, each
subject in a fresh process.

![heap](benchmarks/heap.svg)

${heap}

## In-process cost (MemoryStore)

${throughputTable(results.inProcess)}

## Redis Cluster beside one server

Fresh runs at concurrency 64. The three masters run on this same ${m.cpus}-core machine as the
bench and the single server, so this shows what the cluster client costs, not how a cluster
scales over machines.

${throughputTable(results.cluster)}

${postgresSection(results)}${analysis.trim()}
`;
  const path = join(docsDir, 'benchmarks.md');
  await writeFile(path, doc);
  return relative(process.cwd(), path);
}
