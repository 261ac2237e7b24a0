import { parse, View } from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** Renders a Vega-Lite spec to an SVG document, headless (no browser, no canvas). */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new View(parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Line chart of runs/s against concurrency (log scale), one line per subject. */
export function throughputChart(
  title: string,
  rows: readonly { subject: string; concurrency: number; opsPerSec: number }[],
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title,
    width: 560,
    height: 320,
    background: 'white',
    data: {
      values: rows.map(({ subject, concurrency, opsPerSec }) => ({
        subject,
        concurrency,
        opsPerSec,
      })),
    },
    mark: { type: 'line', point: true },
    encoding: {
      x: {
        field: 'concurrency',
        type: 'quantitative',
        scale: { type: 'log', base: 2 },
        title: 'concurrent runs',
      },
      y: { field: 'opsPerSec', type: 'quantitative', title: 'runs/s' },
      color: {
        field: 'subject',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom', columns: 2, labelLimit: 320 },
      },
    },
  };
}

/** Grouped bars of waiter delay percentiles per number of callers, one panel per subject. */
export function waiterChart(
  rows: readonly {
    subject: string;
    waiters: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
  }[],
): TopLevelSpec {
  const values = rows.flatMap(({ subject, waiters, p50Ms, p99Ms, maxMs }) =>
    [
      { percentile: 'p50', ms: p50Ms },
      { percentile: 'p99', ms: p99Ms },
      { percentile: 'max', ms: maxMs },
    ]
      .filter(({ ms }) => Number.isFinite(ms))
      .map(({ percentile, ms }) => ({ subject, waiters: String(waiters), percentile, ms })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Delay from the end of the winner’s fn to each waiter’s value',
    background: 'white',
    data: { values },
    facet: { column: { field: 'subject', type: 'nominal', title: null } },
    spec: {
      width: 150,
      height: 240,
      mark: 'bar',
      encoding: {
        x: { field: 'waiters', type: 'ordinal', title: 'callers', sort: ['10', '100', '1000'] },
        xOffset: { field: 'percentile', sort: ['p50', 'p99', 'max'] },
        y: { field: 'ms', type: 'quantitative', title: 'ms' },
        color: { field: 'percentile', sort: ['p50', 'p99', 'max'], legend: { orient: 'bottom' } },
      },
    },
  };
}

/** Heap after GC against runs done, one line per subject. */
export function heapChart(
  rows: readonly { subject: string; runs: number; heapUsedMB: number }[],
): TopLevelSpec {
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'Heap after a full GC',
    width: 560,
    height: 240,
    background: 'white',
    data: { values: rows.map(({ subject, runs, heapUsedMB }) => ({ subject, runs, heapUsedMB })) },
    mark: { type: 'line', point: true },
    encoding: {
      x: { field: 'runs', type: 'quantitative', title: 'runs' },
      y: {
        field: 'heapUsedMB',
        type: 'quantitative',
        title: 'heap used (MiB)',
        scale: { zero: true },
      },
      color: {
        field: 'subject',
        type: 'nominal',
        title: null,
        legend: { orient: 'bottom', labelLimit: 320 },
      },
    },
  };
}
