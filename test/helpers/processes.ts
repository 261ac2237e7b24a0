import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * A TypeScript worker in its own OS process, talking JSON lines: it prints one JSON object per
 * line on stdout; the test reads them with `next()`.
 */
export class Worker {
  private readonly lines: unknown[] = [];
  private readonly waiters: ((line: unknown) => void)[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';

  constructor(readonly child: ChildProcess) {
    let buffer = '';
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      buffer += chunk;
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const line = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (line.length > 0) this.push(JSON.parse(line));
        newline = buffer.indexOf('\n');
      }
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      this.stderr += chunk;
    });
    this.exited = new Promise((resolve) => child.on('exit', (code) => resolve(code)));
  }

  /** The next JSON line the worker printed (waits up to `timeoutMs`). */
  next<T = Record<string, unknown>>(timeoutMs = 20_000): Promise<T> {
    const ready = this.lines.shift();
    if (ready !== undefined) return Promise.resolve(ready as T);
    return new Promise<T>((resolve, reject) => {
      const waiter = (line: unknown) => {
        clearTimeout(timer);
        resolve(line as T);
      };
      const timer = setTimeout(() => {
        // Leave no stale waiter behind: it would swallow the next line.
        this.waiters.splice(this.waiters.indexOf(waiter), 1);
        reject(
          new Error(
            `worker ${this.child.pid} printed nothing for ${timeoutMs} ms; stderr: ${this.stderr}`,
          ),
        );
      }, timeoutMs);
      this.waiters.push(waiter);
    });
  }

  /** Waits for the next line whose `event` field equals `event`, dropping others. */
  async until<T = Record<string, unknown>>(event: string, timeoutMs = 20_000): Promise<T> {
    for (;;) {
      const line = await this.next<Record<string, unknown>>(timeoutMs);
      if (line.event === event) return line as T;
    }
  }

  send(message: unknown): void {
    this.child.stdin?.write(`${JSON.stringify(message)}\n`);
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    this.child.kill(signal);
  }

  private push(line: unknown): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(line);
    else this.lines.push(line);
  }
}

/** Starts `script` (a .ts file path or URL) under tsx in a new Node process. */
export function startWorker(
  script: string | URL,
  args: readonly string[] = [],
  env: NodeJS.ProcessEnv = {},
): Worker {
  const path = script instanceof URL ? fileURLToPath(script) : script;
  const child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
    env: { ...process.env, ...env },
  });
  return new Worker(child);
}
