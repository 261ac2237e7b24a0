import type { Worker } from './processes.js';

/**
 * Every JSON line a {@link Worker} prints, kept in order and never consumed, so a test can wait
 * for one kind of line without dropping lines of another kind that arrive first.
 */
export class WorkerLog<Line extends object = Record<string, unknown>> {
  readonly lines: Line[] = [];
  private readonly listeners = new Set<() => void>();

  constructor(readonly worker: Worker) {
    let buffer = '';
    worker.child.stdout?.on('data', (chunk: string | Buffer) => {
      buffer += chunk.toString();
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        const text = buffer.slice(0, newline).trim();
        buffer = buffer.slice(newline + 1);
        if (text.length > 0) this.lines.push(JSON.parse(text) as Line);
        newline = buffer.indexOf('\n');
      }
      for (const listener of this.listeners) listener();
    });
    worker.child.on('exit', () => {
      for (const listener of this.listeners) listener();
    });
  }

  /** Lines printed so far that match `predicate`. */
  filter(predicate: (line: Line) => boolean): Line[] {
    return this.lines.filter(predicate);
  }

  /**
   * Resolves with the first `count` lines matching `predicate` once the worker has printed
   * them; rejects after `timeoutMs`, or at once if the worker exits first.
   */
  waitFor(predicate: (line: Line) => boolean, count = 1, timeoutMs = 20_000): Promise<Line[]> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const matching = this.filter(predicate);
        if (matching.length >= count) {
          finish();
          resolve(matching.slice(0, count));
        } else if (this.worker.child.exitCode !== null || this.worker.child.signalCode !== null) {
          finish();
          reject(
            new Error(
              `worker ${this.worker.child.pid} exited with ${matching.length}/${count} expected lines; ` +
                `stderr: ${this.worker.stderr}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new Error(
            `worker ${this.worker.child.pid} printed ${this.filter(predicate).length}/${count} ` +
              `expected lines in ${timeoutMs} ms; lines: ${JSON.stringify(this.lines)}; ` +
              `stderr: ${this.worker.stderr}`,
          ),
        );
      }, timeoutMs);
      const finish = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }
}
