import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { BenchContext } from '../lib/context.js';
import type { ProcessMemoryRow, Results } from '../lib/results.js';

const WORKER = fileURLToPath(new URL('../workers/heap.ts', import.meta.url));

/**
 * Point 6: the heap after a full GC at intervals over 1,000,000 runs of the executor, beside a
 * raw ioredis loop of the same two commands over as many runs, each in a fresh process.
 */
export async function processMemory(context: BenchContext, results: Results): Promise<void> {
  const runs = context.quick ? 20_000 : 1_000_000;
  const samples = 10;
  for (const [mode, subject] of [
    ['executor', 'idempotent-executor'],
    ['raw', 'raw SET NX PX + SET PX loop'],
  ] as const) {
    const tick = context.progress.step(`process memory: ${subject}, ${runs} runs`, samples + 1);
    const child = spawn(
      process.execPath,
      [
        '--expose-gc',
        '--import',
        'tsx',
        WORKER,
        mode,
        context.redisUrl,
        String(runs),
        String(samples),
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    const rows: ProcessMemoryRow[] = [];
    for await (const line of createInterface({ input: child.stdout })) {
      const sample = JSON.parse(line) as Omit<ProcessMemoryRow, 'subject'>;
      rows.push({ subject, ...sample });
      tick();
    }
    const code = await exited;
    if (code !== 0) throw new Error(`the heap worker (${mode}) exited with ${code}`);
    results.processMemory.push(...rows);
    await context.admin.flushall();
  }
}
