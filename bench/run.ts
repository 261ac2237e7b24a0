// `npm run bench [-- --quick] [--only fresh,replay,...] [--docs <dir>] [--render]`
//
// Measures what the performance contract in DESIGN.md promises, against a redis-server the bench
// starts for itself on a free port (so it may empty it between measurements), prints the figures
// and regenerates docs/benchmarks.md with its charts. `--quick` runs every scenario at a size
// for CI and writes its report to a temporary directory unless --docs is given. Nothing here
// checks a speed; a scenario that fails (a peer that cannot connect, a replay that ran fn) fails
// the run. `--render` measures nothing: it rewrites docs/benchmarks.md and its charts from the
// last run's docs/benchmarks.json (after editing bench/analysis.md, say).
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { OwnRedisServer } from '../test/helpers/redis.js';
import { assertBuilt } from './lib/built.js';
import type { BenchContext } from './lib/context.js';
import { Progress } from './lib/progress.js';
import { consoleReport, writeReport } from './lib/report.js';
import { emptyResults, type Results } from './lib/results.js';
import { clusterThroughput } from './scenarios/cluster.js';
import { commandsPerRun } from './scenarios/commands.js';
import { freshRuns } from './scenarios/fresh.js';
import { inProcess } from './scenarios/in-process.js';
import { postgresStore } from './scenarios/postgres.js';
import { processMemory } from './scenarios/process-memory.js';
import { redisMemory } from './scenarios/redis-memory.js';
import { replays } from './scenarios/replay.js';
import { serverCpu } from './scenarios/server-cpu.js';
import { telemetry } from './scenarios/telemetry.js';
import { waiters } from './scenarios/waiters.js';
import { subjects } from './subjects/all.js';

const SCENARIOS: Record<string, (context: BenchContext, results: Results) => Promise<void>> = {
  fresh: freshRuns,
  replay: replays,
  waiters,
  commands: commandsPerRun,
  'redis-memory': redisMemory,
  'process-memory': processMemory,
  'in-process': inProcess,
  telemetry,
  'server-cpu': serverCpu,
  cluster: clusterThroughput,
  postgres: postgresStore,
};

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    docs: { type: 'string' },
    render: { type: 'boolean', default: false },
  },
});
const quick = values.quick ?? false;
const only = values.only?.split(',') ?? Object.keys(SCENARIOS);
for (const name of only) {
  if (!(name in SCENARIOS))
    throw new Error(`unknown scenario ${name}; known: ${Object.keys(SCENARIOS).join(', ')}`);
}
const root = fileURLToPath(new URL('..', import.meta.url));
if (values.render !== true) assertBuilt(root);
const docsDir =
  values.docs ??
  (quick || values.only !== undefined
    ? await mkdtemp(join(tmpdir(), 'bench-'))
    : join(root, 'docs'));

if (values.render === true) {
  const saved = JSON.parse(await readFile(join(docsDir, 'benchmarks.json'), 'utf8')) as Results;
  console.log(`Report: ${await writeReport(saved, docsDir, join(root, 'bench', 'analysis.md'))}`);
  process.exit(0);
}

const server = await OwnRedisServer.start();
const admin = new Redis(server.url);
const progress = new Progress();
const [redisVersion] = /redis_version:(\S+)/.exec(await admin.info('server'))?.slice(1) ?? ['?'];
const { version: ioredisVersion } = JSON.parse(
  await readFile(join(root, 'node_modules', 'ioredis', 'package.json'), 'utf8'),
) as { version: string };
const results = emptyResults(
  {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model.trim() ?? '?',
    node: process.version,
    redis: redisVersion ?? '?',
    ioredis: ioredisVersion,
  },
  quick,
);
const context: BenchContext = { quick, redisUrl: server.url, admin, subjects, progress };
try {
  for (const name of only) await SCENARIOS[name]?.(context, results);
} finally {
  progress.stop();
  admin.disconnect();
  await server.stop();
}
await writeFile(join(docsDir, 'benchmarks.json'), `${JSON.stringify(results, null, 2)}\n`);
const written = await writeReport(results, docsDir, join(root, 'bench', 'analysis.md'));
console.log(consoleReport(results));
console.log(`\nReport: ${written}`);
