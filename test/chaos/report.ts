// The report as text.
import type { ChaosFigures } from './analyse.js';
import type { ChaosOptions } from './options.js';

export function formatReport(
  options: ChaosOptions,
  figures: ChaosFigures,
  timing: { totalMs: number; stormMs: number },
): string {
  const out: string[] = [];
  const line = (text = '') => out.push(text);
  const row = (label: string, value: unknown) => line(`  ${label.padEnd(58)} ${String(value)}`);

  line(
    options.soakMs !== undefined
      ? `chaos soak report: ${Math.round(options.soakMs / 60_000)} min at ${options.soakRate} keys/s`
      : options.store === 'redis'
        ? 'chaos report'
        : `chaos report: ${storeLabel(options)}`,
  );
  line(
    `  ${options.workers} workers x ${options.concurrency} in flight, ${options.keys} keys x ${options.dups} callers, ` +
      `leaseMs ${options.leaseMs}, waitTimeoutMs ${options.waitTimeoutMs}, stall ${options.stallMs} ms, ` +
      serverLabel(options),
  );
  line(
    `  storm ${(timing.stormMs / 1000).toFixed(1)} s, whole run ${(timing.totalMs / 1000).toFixed(1)} s`,
  );
  line();
  line('faults');
  for (const [kind, count] of Object.entries(figures.faultsLanded)) {
    row(kind, options.faults.has(kind as never) ? count : 'off');
  }
  for (const entry of figures.faultLog) line(`    ${entry}`);
  line();
  line('executions');
  row('keys', figures.keys);
  row('callers', figures.callers);
  row('executions (ledger rows)', figures.executions);
  row('keys run once', figures.keysRunOnce);
  row('keys run more than once', figures.keysRunMoreThanOnce);
  row('keys never run (every caller got an error)', figures.keysNeverRun);
  row('re-executions (executions beyond the first of a key)', figures.reExecutions);
  for (const [cause, count] of Object.entries(figures.reExecutionsByCause)) {
    row(`  ${cause}`, `${count} (min gap ${figures.minGapMsByCause[cause]} ms)`);
  }
  const { ledger } = figures;
  if (ledger !== undefined) {
    line();
    line('ledger (rows fn wrote inside its transaction; committed with the record or not at all)');
    row('ledger rows committed', ledger.rows);
    row('keys with one ledger row', ledger.keysWithOneRow);
    row('keys run with no ledger row (every execution rolled back)', ledger.keysWithoutRow);
    row('keys run more than once, with one ledger row', ledger.keysRunAgainWithOneRow);
    row('executions rolled back (no ledger row)', ledger.executionsRolledBack);
    row('values given after a COMMIT in doubt (store-failed), no ledger row', ledger.valuesInDoubt);
  }
  line();
  line('callers');
  row('got a value', figures.valueOutcomes);
  for (const [code, count] of Object.entries(figures.errorsByCode)) row(`got ${code}`, count);
  row('keys whose callers saw more than one value', figures.keysWhoseCallersSawSeveralValues);
  row(
    'time to settle p50 / p99 / max, ms',
    `${figures.settleMs.p50} / ${figures.settleMs.p99} / ${figures.settleMs.max}`,
  );
  line();
  line('must be 0');
  const labels: Record<keyof ChaosFigures['mustBeZero'], string> = {
    unexplainedReExecutions: 're-executions no fault explains',
    fencingViolations: 'later execution without a larger fencing token',
    differentOutcomesForKeyRunOnce: 'callers with another outcome, key run once',
    valuesFromNoExecution: 'values from no execution of their key',
    leaseLostButStored: 'LEASE_LOST callers whose execution was stored',
    waitersOverBound: 'waiters past their wait bound',
    hungCallers: 'callers never settled',
    unhandledRejections: 'unhandled rejections / exceptions in workers',
    leakedHandles: 'handles left open at worker exit',
    unexpectedWorkerExits: 'workers that died of something else than a fault',
    faultsNotLanded: 'enabled faults that never landed',
    duplicateLedgerRows: 'duplicate ledger rows (committed rows beyond one per key)',
    valuesWithoutLedgerRow: "values whose execution's ledger row did not commit",
    leaseLostButCommitted: 'LEASE_LOST callers whose ledger row committed',
  };
  for (const [name, label] of Object.entries(labels)) {
    const value = figures.mustBeZero[name as keyof typeof labels];
    if (value === undefined) continue;
    row(label, value === 0 ? '0' : `${value}   <-- FAIL`);
  }
  const failing = Object.entries(figures.details);
  if (failing.length > 0) {
    line();
    line('details (first few)');
    for (const [figure, entries] of failing) {
      for (const entry of entries) line(`  ${figure}: ${entry}`);
    }
  }
  const samples = Object.entries(figures.samples);
  if (samples.length > 0) {
    line();
    line('re-execution samples');
    for (const [cause, entries] of samples) {
      line(`  ${cause}`);
      for (const entry of entries.slice(0, 2)) line(`    ${entry}`);
    }
  }
  line();
  line(passed(figures) ? 'PASS' : 'FAIL');
  return out.join('\n');
}

function storeLabel(options: ChaosOptions): string {
  if (options.store === 'redis') return 'Redis';
  if (options.store === 'cluster') return 'Redis Cluster';
  return options.transactional ? 'PostgreSQL, transactional' : 'PostgreSQL';
}

function serverLabel(options: ChaosOptions): string {
  if (options.store === 'redis') {
    return `Redis ${options.persistence ? 'AOF appendfsync always' : 'without persistence'} through the harness's proxy`;
  }
  if (options.store === 'cluster') {
    return 'Redis Cluster of 3 masters and 3 replicas (no persistence, asynchronous replication)';
  }
  return `PostgreSQL through the harness's proxy, down ${options.downMs} ms, ${
    options.transactional
      ? 'fn in transactional(store, …), its ledger row in the transaction'
      : 'plain fn (ledger row committed at once)'
  }`;
}

export function passed(figures: ChaosFigures): boolean {
  return Object.values(figures.mustBeZero).every((value) => value === 0);
}
