// The parent's handle on one worker process: spawns it under tsx, hands each JSON line it prints
// to a callback, and reports how it ended.
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { now, type WorkerCommand, type WorkerConfig, type WorkerEvent } from './protocol.js';

const WORKER_SCRIPT = fileURLToPath(new URL('./worker.ts', import.meta.url));
/** How much of a worker's stderr is kept for diagnostics. */
const STDERR_TAIL = 4_000;

export interface WorkerEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** When the parent saw the process exit. */
  readonly t: number;
}

export class WorkerProcess {
  readonly pid: number;
  /** Resolves once the process has exited and every line it printed has been handled. */
  readonly ended: Promise<WorkerEnd>;
  stderr = '';
  private readonly child: ChildProcess;

  constructor(config: WorkerConfig, onEvent: (event: WorkerEvent, worker: WorkerProcess) => void) {
    this.child = spawn(
      process.execPath,
      ['--import', 'tsx', WORKER_SCRIPT, JSON.stringify(config)],
      {
        stdio: ['pipe', 'pipe', 'pipe'],
      },
    );
    this.pid = this.child.pid ?? -1;
    const lines = createInterface({ input: this.child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      if (line.trim().length > 0) onEvent(JSON.parse(line) as WorkerEvent, this);
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    // A write to a worker that just died must not crash the parent.
    this.child.stdin?.on('error', () => {});
    let exit: Omit<WorkerEnd, 'code' | 'signal'> & Partial<WorkerEnd> = { t: 0 };
    this.child.on('exit', (code, signal) => {
      exit = { code, signal, t: now() };
    });
    const linesDone = new Promise<void>((resolve) => lines.on('close', resolve));
    this.ended = new Promise((resolve) => {
      this.child.on('close', () => {
        void linesDone.then(() =>
          resolve({ code: exit.code ?? null, signal: exit.signal ?? null, t: exit.t || now() }),
        );
      });
    });
  }

  send(command: WorkerCommand): void {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.stdin?.write(`${JSON.stringify(command)}\n`);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
