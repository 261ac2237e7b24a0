#!/usr/bin/env node
// The `idempotent-executor` command (the package's `bin`). See docs/cli.md.
import { runCli } from './run.js';

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => stop.abort());
}

runCli(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr, stdin: process.stdin, env: process.env },
  stop.signal,
).then((code) => {
  process.exitCode = code;
  // Every connection is closed by now; a stray handle must not keep a script waiting.
  setTimeout(() => process.exit(code), 2_000).unref();
});
