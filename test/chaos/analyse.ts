// The figures of the report, computed from the ledger and the evidence.
import { ErrorCode } from '../../src/index.js';
import { CAUSES, Classifier, type Explanation, executionId, firstAfter } from './classify.js';
import { getOrCreate } from './collections.js';
import type { CallerResult, Evidence } from './evidence.js';
import type { ExecutionRow, LedgerRow } from './ledger.js';
import { type ChaosOptions, faultsOf } from './options.js';

/** Slack on a waiter's bound for scheduling lag on a loaded machine, ms. */
const WAIT_GRACE_MS = 1_000;
const SAMPLES = 5;

export interface ChaosFigures {
  readonly callers: number;
  readonly keys: number;
  readonly executions: number;
  readonly keysNeverRun: number;
  readonly keysRunOnce: number;
  readonly keysRunMoreThanOnce: number;
  /** Executions beyond the first of their key, by cause. */
  readonly reExecutions: number;
  readonly reExecutionsByCause: Record<string, number>;
  /** Shortest time from an execution's start to the next start of its key, by cause, ms. */
  readonly minGapMsByCause: Record<string, number>;
  readonly samples: Record<string, string[]>;
  readonly valueOutcomes: number;
  readonly errorsByCode: Record<string, number>;
  readonly keysWhoseCallersSawSeveralValues: number;
  readonly settleMs: { p50: number; p99: number; max: number };
  readonly faultsLanded: Record<string, number>;
  readonly faultLog: string[];
  /** The transactional mode only: the rows fn wrote inside its transaction. */
  readonly ledger?: LedgerFigures;
  /** Every figure that must be 0 for the run to pass. */
  readonly mustBeZero: {
    readonly unexplainedReExecutions: number;
    readonly fencingViolations: number;
    readonly differentOutcomesForKeyRunOnce: number;
    readonly valuesFromNoExecution: number;
    readonly leaseLostButStored: number;
    readonly waitersOverBound: number;
    readonly hungCallers: number;
    readonly unhandledRejections: number;
    readonly leakedHandles: number;
    readonly unexpectedWorkerExits: number;
    readonly faultsNotLanded: number;
    /** The transactional mode only: committed ledger rows beyond the first of each key. */
    readonly duplicateLedgerRows?: number;
    /** The transactional mode only: values whose execution's ledger row did not commit. */
    readonly valuesWithoutLedgerRow?: number;
    /** The transactional mode only: LEASE_LOST callers whose execution's ledger row committed. */
    readonly leaseLostButCommitted?: number;
  };
  readonly details: Record<string, string[]>;
}

export interface LedgerFigures {
  /** Committed rows. */
  readonly rows: number;
  readonly keysWithOneRow: number;
  /** Keys with no committed row: every execution rolled back, or none ran. */
  readonly keysWithoutRow: number;
  /** Keys fn ran more than once for, with one committed row. */
  readonly keysRunAgainWithOneRow: number;
  /** Executions whose row did not commit (their transaction rolled back). */
  readonly executionsRolledBack: number;
  /**
   * Values whose execution's row did not commit, handed out after a `store-failed`: the COMMIT
   * was sent and its answer lost, and PostgreSQL stayed unreachable until the lease ran out.
   * The executor then gives the caller fn's value without knowing the transaction's fate
   * (docs/postgres.md); nothing committed, so the key runs again on a clean database.
   */
  readonly valuesInDoubt: number;
}

/** `ledgerRows`: the committed rows of the transactional mode; undefined in other modes. */
export function analyse(
  options: ChaosOptions,
  rows: readonly ExecutionRow[],
  evidence: Evidence,
  ledgerRows?: readonly LedgerRow[],
): ChaosFigures {
  const byKey = groupBy(rows, (row) => row.key);
  for (const list of byKey.values()) list.sort((a, b) => a.startedAt - b.startedAt);
  const details: Record<string, string[]> = {};
  const note = (figure: string, line: string) => pushCapped(details, figure, line);

  // Re-executions and their causes; fencing order.
  const classifier = new Classifier(evidence, options.persistence, options.store);
  const reExecutionsByCause: Record<string, number> = {};
  const minGapMsByCause: Record<string, number> = {};
  const samples: Record<string, string[]> = {};
  let fencingViolations = 0;
  for (const [key, list] of byKey) {
    for (let i = 1; i < list.length; i++) {
      const previous = list[i - 1] as ExecutionRow;
      const next = list[i] as ExecutionRow;
      if (next.token <= previous.token) {
        fencingViolations++;
        note('fencingViolations', `${key}: token ${next.token} after ${previous.token}`);
      }
      const explanation: Explanation = classifier.explain(previous, next);
      reExecutionsByCause[explanation.cause] = (reExecutionsByCause[explanation.cause] ?? 0) + 1;
      const gap = Math.round(next.startedAt - previous.startedAt);
      minGapMsByCause[explanation.cause] = Math.min(minGapMsByCause[explanation.cause] ?? gap, gap);
      pushCapped(
        samples,
        explanation.cause,
        `${key}: pid ${previous.pid} -> pid ${next.pid} after ${gap} ms; ${explanation.because}`,
      );
    }
  }

  // Outcomes.
  const rowById = new Map(rows.map((row) => [executionId(row.key, row.token), row]));
  /** Executions some caller received the value of. */
  const storedExecutions = new Set<string>();
  const errorsByCode: Record<string, number> = {};
  let valueOutcomes = 0;
  let valuesFromNoExecution = 0;
  let differentOutcomesForKeyRunOnce = 0;
  const valuesByKey = new Map<string, Set<number>>();
  for (const caller of evidence.callers.values()) {
    if (caller.token === undefined) {
      const code = caller.code ?? 'unknown';
      errorsByCode[code] = (errorsByCode[code] ?? 0) + 1;
      continue;
    }
    valueOutcomes++;
    storedExecutions.add(executionId(caller.key, caller.token));
    const row = rowById.get(executionId(caller.key, caller.token));
    if (row === undefined) {
      valuesFromNoExecution++;
      note('valuesFromNoExecution', `${caller.key}: token ${caller.token} (pid ${caller.pid})`);
      continue;
    }
    getOrCreate(valuesByKey, caller.key, () => new Set<number>()).add(caller.token);
    const runs = byKey.get(caller.key) ?? [];
    if (runs.length === 1 && runs[0]?.token !== caller.token) {
      differentOutcomesForKeyRunOnce++;
      note('differentOutcomesForKeyRunOnce', `${caller.key}: caller ${caller.id}`);
    }
  }
  // A caller told LEASE_LOST ("your outcome was not stored") while another caller got that
  // very execution's value.
  let leaseLostButStored = 0;
  for (const caller of evidence.callers.values()) {
    if (caller.code !== ErrorCode.LEASE_LOST || caller.ownToken === undefined) continue;
    if (storedExecutions.has(executionId(caller.key, caller.ownToken))) {
      leaseLostButStored++;
      note('leaseLostButStored', `${caller.key}: caller ${caller.id} (pid ${caller.pid})`);
    }
  }

  const waitersOverBound = countWaitersOverBound(options, rowById, evidence, note);
  const ledger =
    ledgerRows === undefined ? undefined : analyseLedger(byKey, ledgerRows, evidence, note);
  const settle = [...evidence.callers.values()].map((c) => c.t1 - c.t0).sort((a, b) => a - b);

  const leaked = evidence.closes.flatMap((close) =>
    close.leaked.map((resource) => `pid ${close.pid}: ${resource}`),
  );
  for (const line of leaked) note('leakedHandles', line);
  const unexpectedExits = evidence.deaths.filter((d) => d.dying === undefined);
  for (const d of unexpectedExits) {
    note('unexpectedWorkerExits', `pid ${d.pid}: code ${d.code}, signal ${d.signal}`);
  }
  for (const u of evidence.unhandled) {
    note('unhandledRejections', `pid ${u.pid}: ${u.kind}: ${u.message}`);
  }
  const faultsLanded = Object.fromEntries(
    faultsOf(options.store).map((kind) => [kind, evidence.landed.get(kind) ?? 0]),
  );
  const notLanded = [...options.faults].filter(
    (kind) => options.rounds > 0 && (evidence.landed.get(kind) ?? 0) === 0,
  );
  for (const kind of notLanded) note('faultsNotLanded', kind);
  for (const id of evidence.hung) note('hungCallers', `caller ${id}`);

  return {
    callers: evidence.callers.size + evidence.hung.length,
    keys: options.keys,
    executions: rows.length,
    keysNeverRun: options.keys - byKey.size,
    keysRunOnce: [...byKey.values()].filter((list) => list.length === 1).length,
    keysRunMoreThanOnce: [...byKey.values()].filter((list) => list.length > 1).length,
    reExecutions: rows.length - byKey.size,
    reExecutionsByCause,
    minGapMsByCause,
    samples,
    valueOutcomes,
    errorsByCode,
    keysWhoseCallersSawSeveralValues: [...valuesByKey.values()].filter((v) => v.size > 1).length,
    settleMs: {
      p50: round(percentile(settle, 0.5)),
      p99: round(percentile(settle, 0.99)),
      max: round(settle[settle.length - 1] ?? 0),
    },
    faultsLanded,
    faultLog: faultLog(evidence),
    ...(ledger === undefined ? {} : { ledger: ledger.figures }),
    mustBeZero: {
      unexplainedReExecutions: reExecutionsByCause[CAUSES.unexplained] ?? 0,
      fencingViolations,
      differentOutcomesForKeyRunOnce,
      valuesFromNoExecution,
      leaseLostButStored,
      waitersOverBound,
      hungCallers: evidence.hung.length,
      unhandledRejections: evidence.unhandled.length,
      leakedHandles: leaked.length,
      unexpectedWorkerExits: unexpectedExits.length,
      faultsNotLanded: notLanded.length,
      ...ledger?.mustBeZero,
    },
    details,
  };
}

/**
 * A waiter is a caller whose outcome did not come from an execution in its own process. Its
 * wait is bounded by waitTimeoutMs (or by the two store calls before it starts waiting), plus
 * any stall of its own process (its timers cannot fire meanwhile), plus scheduling slack.
 */
function countWaitersOverBound(
  options: ChaosOptions,
  rowById: ReadonlyMap<string, ExecutionRow>,
  evidence: Evidence,
  note: (figure: string, line: string) => void,
): number {
  let over = 0;
  for (const caller of evidence.callers.values()) {
    if (ranHere(caller, rowById)) continue;
    const stalled = evidence.stalls
      .filter((s) => s.pid === caller.pid)
      .reduce(
        (sum, s) =>
          sum + Math.max(0, Math.min(s.to ?? caller.t1, caller.t1) - Math.max(s.from, caller.t0)),
        0,
      );
    const bound =
      Math.max(options.waitTimeoutMs, 2 * options.storeTimeoutMs) + stalled + WAIT_GRACE_MS;
    const waited = caller.t1 - caller.t0;
    if (waited > bound) {
      over++;
      note(
        'waitersOverBound',
        `${caller.key}: caller ${caller.id} (pid ${caller.pid}) waited ${Math.round(waited)} ms, bound ${Math.round(bound)} ms, got ${caller.code ?? 'a value'}`,
      );
    }
  }
  return over;
}

function ranHere(caller: CallerResult, rowById: ReadonlyMap<string, ExecutionRow>): boolean {
  if (caller.ownToken !== undefined) return true;
  return (
    caller.token !== undefined &&
    rowById.get(executionId(caller.key, caller.token))?.pid === caller.pid
  );
}

/**
 * The transactional mode's ledger: the rows fn wrote inside its transaction, committed with the
 * record or rolled back with everything else. Whatever ran twice, each key must hold at most one
 * row, the row of the execution whose value the callers got.
 */
function analyseLedger(
  executionsByKey: ReadonlyMap<string, readonly ExecutionRow[]>,
  ledgerRows: readonly LedgerRow[],
  evidence: Evidence,
  note: (figure: string, line: string) => void,
): {
  figures: LedgerFigures;
  mustBeZero: {
    duplicateLedgerRows: number;
    valuesWithoutLedgerRow: number;
    leaseLostButCommitted: number;
  };
} {
  const byKey = groupBy(ledgerRows, (row) => row.key);
  const committed = new Set(ledgerRows.map((row) => executionId(row.key, row.token)));
  const executionById = new Map(
    [...executionsByKey.values()].flat().map((row) => [executionId(row.key, row.token), row]),
  );
  let duplicateLedgerRows = 0;
  for (const [key, list] of byKey) {
    if (list.length < 2) continue;
    duplicateLedgerRows += list.length - 1;
    note(
      'duplicateLedgerRows',
      `${key}: ${list.map((row) => `token ${row.token} (pid ${row.pid})`).join(', ')}`,
    );
  }
  let valuesWithoutLedgerRow = 0;
  let valuesInDoubt = 0;
  let leaseLostButCommitted = 0;
  for (const caller of evidence.callers.values()) {
    const id = caller.token === undefined ? undefined : executionId(caller.key, caller.token);
    if (id !== undefined && !committed.has(id)) {
      const execution = executionById.get(id);
      if (execution !== undefined && firstAfter(evidence.storeFailed, execution) !== undefined) {
        valuesInDoubt++;
        continue;
      }
      valuesWithoutLedgerRow++;
      note(
        'valuesWithoutLedgerRow',
        `${caller.key}: caller ${caller.id} (pid ${caller.pid}) got token ${caller.token}`,
      );
    }
    if (
      caller.code === ErrorCode.LEASE_LOST &&
      caller.ownToken !== undefined &&
      committed.has(executionId(caller.key, caller.ownToken))
    ) {
      leaseLostButCommitted++;
      note('leaseLostButCommitted', `${caller.key}: caller ${caller.id} (pid ${caller.pid})`);
    }
  }
  let keysRunAgainWithOneRow = 0;
  let executionsRolledBack = 0;
  for (const [key, executions] of executionsByKey) {
    if (executions.length > 1 && byKey.get(key)?.length === 1) keysRunAgainWithOneRow++;
    for (const row of executions) {
      if (!committed.has(executionId(row.key, row.token))) executionsRolledBack++;
    }
  }
  return {
    figures: {
      rows: ledgerRows.length,
      keysWithOneRow: [...byKey.values()].filter((list) => list.length === 1).length,
      keysWithoutRow: [...executionsByKey.keys()].filter((key) => !byKey.has(key)).length,
      keysRunAgainWithOneRow,
      executionsRolledBack,
      valuesInDoubt,
    },
    mustBeZero: { duplicateLedgerRows, valuesWithoutLedgerRow, leaseLostButCommitted },
  };
}

function faultLog(evidence: Evidence): string[] {
  const start = evidence.stormStart;
  const at = (t: number) => `+${((t - start) / 1000).toFixed(2)}s`;
  const lines: { t: number; text: string }[] = [];
  for (const d of evidence.deaths) {
    lines.push({
      t: d.dying?.t ?? d.t,
      text:
        d.dying === undefined
          ? `worker ${d.slot} pid ${d.pid} exited (code ${d.code}, signal ${d.signal})`
          : `kill-${d.dying.phase === 'mid-fn' ? 'mid' : 'after'}: worker ${d.slot} pid ${d.pid} SIGKILLed itself holding ${d.dying.key} (${d.dying.phase})`,
    });
  }
  for (const s of evidence.stalls) {
    lines.push({
      t: s.from,
      text: `stall: worker ${s.slot} pid ${s.pid} blocked ${s.to === undefined ? '(died)' : `${Math.round(s.to - s.from)} ms`} inside ${s.key}`,
    });
  }
  for (const f of evidence.serverFaults) lines.push({ t: f.from, text: `${f.kind}: ${f.detail}` });
  return lines.sort((a, b) => a.t - b.t).map((line) => `${at(line.t)} ${line.text}`);
}

function groupBy<T>(items: readonly T[], keyOf: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    getOrCreate(groups, keyOf(item), () => [] as T[]).push(item);
  }
  return groups;
}

/** Appends `line` to `record[name]`, keeping the first few only. */
function pushCapped(record: Record<string, string[]>, name: string, line: string): void {
  const list = record[name] ?? [];
  record[name] = list;
  if (list.length < SAMPLES) list.push(line);
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)] ?? 0;
}

function round(ms: number): number {
  return Math.round(ms);
}
