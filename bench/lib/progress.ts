import cliProgress from 'cli-progress';

/**
 * The bench's progress display: one bar for the step running now, with its name. On a terminal it
 * redraws in place; elsewhere (CI logs) it prints one line as each step starts, and nothing else.
 */
export class Progress {
  private readonly bars: cliProgress.MultiBar | undefined;
  private bar: cliProgress.SingleBar | undefined;
  private steps = 0;

  private readonly startedAt = Date.now();

  constructor(stream: NodeJS.WriteStream = process.stderr) {
    if (stream.isTTY) {
      this.bars = new cliProgress.MultiBar(
        {
          stream,
          format: '{step} {bar} {percentage}% | {value}/{total} | {name}',
          hideCursor: true,
          clearOnComplete: true,
          autopadding: true,
        },
        cliProgress.Presets.shades_classic,
      );
    }
  }

  /** Starts a step of `total` units; returns the function that counts `done` units (1) done. */
  step(name: string, total: number): (done?: number) => void {
    this.steps++;
    const elapsed = Math.round((Date.now() - this.startedAt) / 1000);
    const step = `[step ${this.steps}, ${Math.floor(elapsed / 60)}m${String(elapsed % 60).padStart(2, '0')}s]`;
    if (this.bars === undefined) {
      process.stderr.write(`${step} ${name}\n`);
      return () => {};
    }
    if (this.bar !== undefined) this.bars.remove(this.bar);
    const bar = this.bars.create(total, 0, { step, name });
    this.bar = bar;
    return (done = 1) => bar.increment(done);
  }

  /** Prints `line` above the bar. */
  log(line: string): void {
    if (this.bars === undefined) process.stderr.write(`${line}\n`);
    else this.bars.log(`${line}\n`);
  }

  stop(): void {
    this.bars?.stop();
  }
}
