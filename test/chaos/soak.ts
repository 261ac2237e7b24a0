// The soak's memory record: each worker's heap and RSS and Redis's memory, sampled over the run,
// summed up in the report and drawn as an SVG chart (vega-lite, rendered headless).
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { TopLevelSpec } from 'vega-lite';
import { renderSvg } from '../../bench/lib/charts.js';
import type { Evidence } from './evidence.js';

const MIB = 1024 * 1024;

interface Point {
  readonly minutes: number;
  readonly mib: number;
  readonly series: string;
}

function points(evidence: Evidence): { workers: Point[]; redis: Point[] } {
  const minutes = (t: number) => (t - evidence.stormStart) / 60_000;
  const workers = evidence.memory.flatMap((sample) => [
    {
      minutes: minutes(sample.t),
      mib: sample.heapUsed / MIB,
      series: `worker ${sample.slot} heap`,
    },
    { minutes: minutes(sample.t), mib: sample.rss / MIB, series: `worker ${sample.slot} RSS` },
  ]);
  const redis = evidence.redisMemory.flatMap((sample) => [
    { minutes: minutes(sample.t), mib: sample.usedMemory / MIB, series: 'used_memory' },
    { minutes: minutes(sample.t), mib: sample.usedMemoryRss / MIB, series: 'used_memory_rss' },
  ]);
  return { workers, redis };
}

function panel(title: string, values: Point[]): TopLevelSpec {
  return {
    title,
    width: 560,
    height: 220,
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'minutes', type: 'quantitative', title: 'minutes into the soak' },
      y: { field: 'mib', type: 'quantitative', title: 'MiB', scale: { zero: true } },
      color: {
        field: 'series',
        type: 'nominal',
        title: null,
        legend: { orient: 'right', labelLimit: 200 },
      },
    },
  } as TopLevelSpec;
}

/** Writes the chart to `path` (SVG). */
export async function writeSoakChart(path: string, evidence: Evidence): Promise<void> {
  const { workers, redis } = points(evidence);
  const spec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    background: 'white',
    vconcat: [
      panel('Workers: heap used and RSS (a killed worker is replaced in its slot)', workers),
      panel('Redis: INFO memory', redis),
    ],
  } as TopLevelSpec;
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, await renderSvg(spec));
}

/** First, last and highest sample of each series, for the report. */
export function memorySummary(evidence: Evidence): string[] {
  const { workers, redis } = points(evidence);
  const bySeries = new Map<string, Point[]>();
  for (const point of [...workers, ...redis]) {
    const list = bySeries.get(point.series) ?? [];
    list.push(point);
    bySeries.set(point.series, list);
  }
  const lines = ['memory (MiB: first sample / last / highest; samples every interval)'];
  for (const [series, list] of [...bySeries].sort(([a], [b]) => a.localeCompare(b))) {
    list.sort((a, b) => a.minutes - b.minutes);
    const first = list[0]?.mib ?? 0;
    const last = list[list.length - 1]?.mib ?? 0;
    const max = Math.max(...list.map((point) => point.mib));
    const label = series.startsWith('used_memory') ? `Redis ${series}` : series;
    lines.push(
      `  ${label.padEnd(58)} ${first.toFixed(1)} / ${last.toFixed(1)} / ${max.toFixed(1)}  (${list.length} samples)`,
    );
  }
  return lines;
}
