// `npm run examples`: runs every docs/examples/**/*.example.ts (compiled by `tsc -p .` in lint)
// against the Redis at REDIS_URL, one at a time, each within 60 s. Examples assert what they
// show, so a library change that breaks one fails here.
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const TIMEOUT_MS = 60_000;

function findExamples(dir) {
  return readdirSync(dir)
    .flatMap((name) => {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) return findExamples(path);
      return name.endsWith('.example.ts') ? [path] : [];
    })
    .sort();
}

function run(file) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n(killed after ${TIMEOUT_MS} ms)`;
      child.kill('SIGKILL');
    }, TIMEOUT_MS);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, output, ms: Date.now() - started });
    });
  });
}

const examples = findExamples(join(root, 'docs/examples'));
let passed = 0;
let failed = 0;
for (const file of examples) {
  const { ok, output, ms } = await run(file);
  const name = relative(root, file);
  if (ok) {
    passed++;
    console.log(`✔ ${name} (${ms} ms)`);
  } else {
    failed++;
    console.log(`✖ ${name} (${ms} ms)\n${output.replace(/^/gm, '    ')}`);
  }
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && passed > 0 ? 0 : 1);
