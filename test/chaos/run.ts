// `npm run chaos`: a storm of duplicate calls across worker processes sharing a store (a Redis
// of the harness's own, or PostgreSQL through a proxy of its own), with faults injected at
// random moments, checked against a ledger of every execution kept in PostgreSQL. See
// docs/chaos.md.
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { analyse } from './analyse.js';
import { type ChaosBackend, startBackend } from './backends.js';
import { Evidence } from './evidence.js';
import { FaultInjector } from './faults.js';
import { LedgerDatabase } from './ledger.js';
import { type ChaosOptions, parseOptions, USAGE } from './options.js';
import { formatReport, passed } from './report.js';
import { buildSchedule } from './schedule.js';
import { memorySummary, writeSoakChart } from './soak.js';
import { Storm } from './storm.js';

async function main(options: ChaosOptions): Promise<boolean> {
  const started = Date.now();
  const ledger = await LedgerDatabase.create(options.pgUrl);
  const evidence = new Evidence();
  let backend: ChaosBackend | undefined;
  let storm: Storm | undefined;
  let injector: FaultInjector | undefined;
  let sampler: NodeJS.Timeout | undefined;
  try {
    backend = await startBackend(options, ledger);
    const { workerStore, unavailableBackoffMs } = backend;
    const namespace = `chaos-${randomBytes(4).toString('hex')}`;
    const schedule = buildSchedule(
      options.keys,
      options.dups,
      options.workers,
      2 * options.concurrency,
    );
    storm = new Storm(
      (slot) => ({
        slot,
        store: workerStore,
        unavailableBackoffMs,
        pgUrl: ledger.url,
        namespace,
        dups: options.dups,
        leaseMs: options.leaseMs,
        waitTimeoutMs: options.waitTimeoutMs,
        storeTimeoutMs: options.storeTimeoutMs,
        concurrency: options.concurrency,
        fnMinMs: options.fnMinMs,
        fnMaxMs: options.fnMaxMs,
        sampleMs: options.soakMs === undefined ? 0 : options.sampleMs,
      }),
      schedule,
      evidence,
      options.soakMs,
    );
    injector = new FaultInjector(options, storm, await backend.faults(storm), evidence);
    progress(
      `chaos: ${storm.callerCount} callers on ${options.workers} workers, ${options.store}, db ${ledger.name}`,
    );
    await storm.start();
    const redisMemory = backend.redisMemory;
    if (options.soakMs !== undefined && redisMemory !== undefined) {
      const sample = () =>
        redisMemory().then(
          (memory) => evidence.redisMemory.push({ t: Date.now(), ...memory }),
          () => {},
        );
      void sample();
      sampler = setInterval(() => {
        void sample();
        const settled = evidence.callers.size;
        progress(
          `chaos: soak ${Math.round((Date.now() - evidence.stormStart) / 60_000)} min, ${settled}/${storm?.callerCount} callers settled`,
        );
      }, options.sampleMs);
    }
    const done = await storm.settled(options.deadlineMs);
    clearInterval(sampler);
    if (!done) progress(`chaos: deadline passed with ${evidence.hung.length} callers unsettled`);
    await injector.close();
    await storm.finish();
    const rows = await ledger.rows();
    const ledgerRows = options.transactional ? await ledger.ledgerRows() : undefined;
    if (options.evidence !== undefined) {
      await writeFile(options.evidence, JSON.stringify({ rows, ledgerRows, ...evidence.toJSON() }));
    }
    const figures = analyse(options, rows, evidence, ledgerRows);
    const timing = {
      totalMs: Date.now() - started,
      stormMs: (evidence.stormEnd || Date.now()) - evidence.stormStart,
    };
    let report = formatReport(options, figures, timing);
    if (options.soakMs !== undefined) {
      await writeSoakChart(options.chart, evidence);
      report += `\n\n${memorySummary(evidence).join('\n')}\n  chart: ${options.chart}`;
    }
    process.stdout.write(`${report}\n`);
    if (options.json !== undefined) {
      const json = { options: { ...options, faults: [...options.faults] }, timing, figures };
      await writeFile(options.json, `${JSON.stringify(json, null, 2)}\n`);
    }
    return passed(figures);
  } finally {
    clearInterval(sampler);
    await injector?.close().catch(() => {});
    await storm?.finish().catch(() => {});
    await backend?.close().catch((error: unknown) => progress(`chaos: could not stop: ${error}`));
    await ledger.drop().catch((error: unknown) => progress(`chaos: could not drop: ${error}`));
  }
}

function progress(message: string): void {
  process.stderr.write(`${message}\n`);
}

let options: ChaosOptions;
try {
  options = parseOptions(process.argv.slice(2));
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
main(options).then(
  (ok) => process.exit(ok ? 0 : 1),
  (error: unknown) => {
    process.stderr.write(`chaos: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exit(1);
  },
);
