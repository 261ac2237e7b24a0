import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { heapChart, renderSvg, throughputChart, waiterChart } from './charts.js';
import type { Results, ThroughputRow } from './results.js';

const EXECUTOR = 'idempotent-executor';
const CEILING = 'ceiling (raw SET NX PX + SET PX)';

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
  const peers = results.fresh.filter(
    (row) => row.concurrency === 64 && row.subject !== EXECUTOR && row.subject !== CEILING,
  );
  const bestPeer = peers.reduce<ThroughputRow | undefined>(
    (best, row) => (best === undefined || row.opsPerSec > best.opsPerSec ? row : best),
    undefined,
  );
  const freshTrips = results.commands.find((r) => r.subject === EXECUTOR && r.kind === 'fresh');
  const replayTrips = results.commands.find((r) => r.subject === EXECUTOR && r.kind === 'replay');
  const waiters = results.waiters.filter((row) => row.subject === EXECUTOR);
  const heap = results.processMemory.filter((row) => row.subject === EXECUTOR);
  const heapFirst = heap[1] ?? heap[0];
  const heapLast = heap[heap.length - 1];
  const record = results.redisMemory.find((row) => row.valueBytes === 1024);
  const yes = (met: boolean | undefined) => (met === undefined ? '—' : met ? 'met' : '**not met**');
  const rows: string[][] = [];
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
      'at most 2',
      ratio(replayTrips.roundTripsPerRun),
      yes(replayTrips.roundTripsPerRun <= 2.05),
    ]);
  }
  if (ours !== undefined && ceiling !== undefined) {
    const r = ours.opsPerSec / ceiling.opsPerSec;
    rows.push([
      'fresh runs/s at concurrency 64 / ceiling',
      '≥ 0.80',
      `${ratio(r)} (${int(ours.opsPerSec)} / ${int(ceiling.opsPerSec)})`,
      yes(r >= 0.8),
    ]);
  }
  if (ours !== undefined && bestPeer !== undefined) {
    rows.push([
      'fresh runs/s at concurrency 64 vs the fastest peer',
      'more',
      `${int(ours.opsPerSec)} vs ${int(bestPeer.opsPerSec)} (${bestPeer.subject})`,
      yes(ours.opsPerSec > bestPeer.opsPerSec),
    ]);
  }
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
    'Waiters:',
    waitersTable(results),
    '',
    'Cluster:',
    throughputTable(results.cluster),
  ].join('\n');
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
executor is handed a default-configured \`new Redis(url)\`, as users do.

## The performance contract

${contractTable(results)}

## Fresh runs

Unique keys; fn returns a ~100-byte object. The **ceiling** is a raw ioredis loop of the two
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

${analysis.trim()}
`;
  const path = join(docsDir, 'benchmarks.md');
  await writeFile(path, doc);
  return relative(process.cwd(), path);
}
