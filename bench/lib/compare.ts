import type { BenchContext } from './context.js';
import { drive, type LoadResult, medianResult } from './load.js';
import type { ThroughputRow } from './results.js';

/** One contender of a throughput comparison: `operation(round, i)` is its i-th run of a round. */
export interface Contender {
  readonly name: string;
  readonly note?: string;
  operation(round: number, i: number): Promise<unknown>;
}

export interface CompareOptions {
  readonly label: string;
  readonly concurrencies: readonly number[];
  /** Runs per measurement at a concurrency. */
  readonly runs: (concurrency: number) => number;
  readonly rounds: number;
  /** Unmeasured runs per contender before the first round (connections, scripts, JIT). */
  readonly warmup: number;
  /** Called before every measurement, e.g. to empty the bench's own Redis. */
  readonly beforeEach?: () => Promise<void>;
}

/**
 * Measures every contender at every concurrency, `rounds` times, the contenders in alternating
 * order from round to round so a noisy neighbour hurts them alike; keeps the median round.
 */
export async function compare(
  context: BenchContext,
  contenders: readonly Contender[],
  options: CompareOptions,
): Promise<ThroughputRow[]> {
  const nameOf = (c: Contender) => (c.note === undefined ? c.name : `${c.name} (${c.note})`);
  let roundId = 0;
  for (const contender of contenders) {
    const tick = context.progress.step(
      `${options.label}: warm-up ${nameOf(contender)}`,
      options.warmup,
    );
    const round = roundId++;
    await drive(options.warmup, 64, (i) => contender.operation(round, i), tick);
  }
  const rows: ThroughputRow[] = [];
  for (const concurrency of options.concurrencies) {
    const runs = options.runs(concurrency);
    const samples = new Map<Contender, LoadResult[]>(contenders.map((c) => [c, []]));
    for (let r = 0; r < options.rounds; r++) {
      const order = r % 2 === 0 ? contenders : [...contenders].reverse();
      for (const contender of order) {
        await options.beforeEach?.();
        const tick = context.progress.step(
          `${options.label}: ${nameOf(contender)}, concurrency ${concurrency}, round ${r + 1}/${options.rounds}`,
          runs,
        );
        const round = roundId++;
        samples
          .get(contender)
          ?.push(await drive(runs, concurrency, (i) => contender.operation(round, i), tick));
      }
    }
    for (const contender of contenders) {
      const result = medianResult(samples.get(contender) ?? []);
      rows.push({
        subject: contender.name,
        concurrency,
        ...result,
        ...(contender.note === undefined ? {} : { note: contender.note }),
      });
    }
  }
  return rows;
}

/**
 * Splits measured rows into the subjects' own and those of the raw loops named `rawNames`: the
 * raw rows kept as they are (`configs`), and the fastest of them at each concurrency renamed
 * `baselineName` (`baseline`), the figure each subject is compared with.
 */
export function separateRaw(
  rows: readonly ThroughputRow[],
  rawNames: ReadonlySet<string>,
  baselineName: string,
): { subjects: ThroughputRow[]; configs: ThroughputRow[]; baseline: ThroughputRow[] } {
  const configs = rows.filter((row) => rawNames.has(row.subject));
  return {
    subjects: rows.filter((row) => !rawNames.has(row.subject)),
    configs,
    baseline: fastestPerConcurrency(configs, baselineName),
  };
}

/** Among `rows` of several configurations, the fastest at each concurrency, renamed `name`. */
function fastestPerConcurrency(rows: readonly ThroughputRow[], name: string): ThroughputRow[] {
  const best = new Map<number, ThroughputRow>();
  for (const row of rows) {
    const current = best.get(row.concurrency);
    if (current === undefined || row.opsPerSec > current.opsPerSec) best.set(row.concurrency, row);
  }
  return [...best.values()].map((row) => ({ ...row, subject: name, note: row.subject }));
}
