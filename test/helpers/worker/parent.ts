// The parent's side of the protocol (protocol.ts): a worker script started under tsx in its own
// OS process, with requests that wait for their reply, events it pushes, its stderr, and its end.
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  type BodyOf,
  BuiltInOp,
  type NoRequests,
  now,
  type ReadyLine,
  type ReplyLine,
  type ReplyOf,
  type RequestLine,
  type Requests,
  type Settled,
  type TransportedError,
  type WorkerEvent,
} from './protocol.js';

export interface WorkerOptions {
  /**
   * Keep every event, for `waitFor`, `filter`, `next` and `until`. The chaos storm, with an
   * event per caller, only listens.
   * @defaultValue true
   */
  readonly keepEvents?: boolean;
  /**
   * How much of the worker's stderr is kept (its tail), characters.
   * @defaultValue 64_000
   */
  readonly stderrTail?: number;
}

export interface WorkerEnd {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  /** When the parent saw the process exit (`now()`). */
  readonly t: number;
}

/** A request's error reply: the worker's error, with its `name`, `code` and `message`. */
export class WorkerError extends Error {
  readonly code: unknown;

  constructor(readonly description: TransportedError) {
    super(String(description.message));
    this.name = typeof description.name === 'string' ? description.name : 'WorkerError';
    this.code = description.code;
  }
}

/** Every worker started and not yet ended, so `after` hooks can stop the ones left. */
const running = new Set<{ stop(): Promise<void> }>();

/** Stops every worker still running (for `after` / `afterEach` hooks). */
export async function stopAllWorkers(): Promise<void> {
  await Promise.all([...running].map((worker) => worker.stop()));
}

/** Waits until each worker is ready; resolves with them. */
export async function allReady<W extends { ready(): Promise<void> }>(workers: W[]): Promise<W[]> {
  await Promise.all(workers.map((worker) => worker.ready()));
  return workers;
}

interface Pending {
  readonly op: string;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** A worker process: `R` its requests (see `Requests`), `E` the events it pushes. */
export class WorkerProcess<
  R extends Requests<R> = NoRequests,
  E extends WorkerEvent = WorkerEvent,
> {
  readonly pid: number;
  /** Resolves once the process has exited and every line it printed has been handled. */
  readonly ended: Promise<WorkerEnd>;
  /** Every event so far, in order (unless `keepEvents` is false). */
  readonly events: E[] = [];
  private readonly child: ChildProcess;
  private readonly keepEvents: boolean;
  private readonly stderrTail: number;
  private stderrText = '';
  private readonly listeners = new Set<(event: E) => void>();
  /** Called on every line and at the end, by whoever waits for something to be printed. */
  private readonly checks = new Set<() => void>();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  /** Where `next()` reads. */
  private cursor = 0;
  private readyLine = false;
  private end: WorkerEnd | undefined;

  /** Starts `script` (a .ts path or URL) under tsx with `config` as its one argument, in JSON. */
  constructor(script: string | URL, config?: unknown, options: WorkerOptions = {}) {
    this.keepEvents = options.keepEvents ?? true;
    this.stderrTail = options.stderrTail ?? 64_000;
    const path = script instanceof URL ? fileURLToPath(script) : script;
    const args = config === undefined ? [] : [JSON.stringify(config)];
    this.child = spawn(process.execPath, ['--import', 'tsx', path, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.pid = this.child.pid ?? -1;
    running.add(this);

    let buffer = '';
    this.child.stdout?.setEncoding('utf8');
    this.child.stdout?.on('data', (chunk: string) => {
      buffer += chunk;
      let start = 0;
      for (let end = buffer.indexOf('\n'); end >= 0; end = buffer.indexOf('\n', start)) {
        const text = buffer.slice(start, end).trim();
        start = end + 1;
        if (text.length > 0) this.handle(JSON.parse(text) as ReplyLine | ReadyLine | E);
      }
      buffer = buffer.slice(start);
    });
    this.child.stderr?.setEncoding('utf8');
    this.child.stderr?.on('data', (chunk: string) => {
      this.stderrText = (this.stderrText + chunk).slice(-this.stderrTail);
    });
    // A write to a worker that just died must not crash the parent.
    this.child.stdin?.on('error', () => {});
    let exit: Omit<WorkerEnd, 't'> & { t?: number } = { code: null, signal: null };
    this.child.on('exit', (code, signal) => {
      exit = { code, signal, t: now() };
    });
    this.ended = new Promise((resolve) => {
      // 'close' comes after 'exit' and after stdout's last 'data': every line is handled.
      this.child.on('close', () => {
        this.end = { code: exit.code, signal: exit.signal, t: exit.t ?? now() };
        running.delete(this);
        for (const [id, request] of this.pending) {
          this.pending.delete(id);
          request.reject(new Error(`${this.exitText()} before it answered ${request.op}`));
        }
        for (const check of this.checks) check();
        resolve(this.end);
      });
    });
  }

  get stderr(): string {
    return this.stderrText;
  }

  /** The process has exited (its last lines may still be on their way: see `ended`). */
  get hasExited(): boolean {
    return this.child.exitCode !== null || this.child.signalCode !== null;
  }

  get isReady(): boolean {
    return this.readyLine;
  }

  onEvent(listener: (event: E) => void): void {
    this.listeners.add(listener);
  }

  /** Resolves once the worker serves; rejects at once if it ends first, or after `timeoutMs`. */
  ready(timeoutMs = 30_000): Promise<void> {
    return this.watch(
      () => (this.readyLine ? true : undefined),
      timeoutMs,
      () => `${this.exitText()} before it was ready`,
      () => `${this.label()} was not ready within ${timeoutMs} ms`,
    ).then(() => {});
  }

  /**
   * Sends a request and resolves with the handler's answer; rejects with a {@link WorkerError}
   * if the handler threw, or if the worker ends first or has not answered within `timeoutMs`.
   * A reply nobody awaits because its worker was killed is not an unhandled rejection.
   */
  request<Op extends keyof R & string>(
    op: Op,
    body: BodyOf<R, Op>,
    timeoutMs = Number.POSITIVE_INFINITY,
  ): Promise<ReplyOf<R, Op>> {
    const id = this.nextId++;
    const reply = new Promise<ReplyOf<R, Op>>((resolve, reject) => {
      if (this.end !== undefined) {
        reject(new Error(`${this.exitText()} before it was asked ${op}`));
        return;
      }
      this.pending.set(id, { op, resolve: resolve as (value: unknown) => void, reject });
      this.write({ op, body, id });
    });
    reply.catch(() => {});
    if (!Number.isFinite(timeoutMs)) return reply;
    const timed = this.within(reply, timeoutMs, `reply to ${op}`).finally(() =>
      this.pending.delete(id),
    );
    timed.catch(() => {});
    return timed;
  }

  /** {@link request}, with the handler's error as data: `{ ok: false, error }`. */
  settle<Op extends keyof R & string>(
    op: Op,
    body: BodyOf<R, Op>,
    timeoutMs = Number.POSITIVE_INFINITY,
  ): Promise<Settled<ReplyOf<R, Op>>> {
    const outcome = this.request(op, body, timeoutMs).then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => {
        if (error instanceof WorkerError) return { ok: false as const, error: error.description };
        throw error;
      },
    );
    outcome.catch(() => {});
    return outcome;
  }

  /** Sends a request whose answer nobody waits for. */
  tell<Op extends keyof R & string>(op: Op, body: BodyOf<R, Op>): void {
    this.write({ op, body });
  }

  /** Opens gate `name` in the worker (see `gate()` in child.ts). */
  open(name: string): void {
    this.write({ op: BuiltInOp.open, body: { gate: name } });
  }

  /** Events so far that match `predicate`. */
  filter<T extends E>(predicate: (event: E) => event is T): T[];
  filter(predicate: (event: E) => boolean): E[];
  filter(predicate: (event: E) => boolean): E[] {
    return this.events.filter(predicate);
  }

  /**
   * Resolves with the first `count` events matching `predicate` once the worker has pushed
   * them; rejects after `timeoutMs`, or at once if the worker ends first.
   */
  waitFor<T extends E>(
    predicate: (event: E) => event is T,
    count?: number,
    timeoutMs?: number,
  ): Promise<T[]>;
  waitFor(predicate: (event: E) => boolean, count?: number, timeoutMs?: number): Promise<E[]>;
  waitFor(predicate: (event: E) => boolean, count = 1, timeoutMs = 20_000): Promise<E[]> {
    this.assertKept();
    const matching = () => this.filter(predicate);
    return this.watch(
      () => (matching().length >= count ? matching().slice(0, count) : undefined),
      timeoutMs,
      () => `${this.exitText()} with ${matching().length}/${count} expected events`,
      () =>
        `${this.label()} pushed ${matching().length}/${count} expected events in ${timeoutMs} ms; ` +
        `events: ${JSON.stringify(this.events)}`,
    );
  }

  /** The next event not yet read by `next` or `until`, in order. */
  next(timeoutMs = 20_000): Promise<E> {
    this.assertKept();
    return this.watch(
      () => (this.cursor < this.events.length ? this.events[this.cursor++] : undefined),
      timeoutMs,
      () => `${this.exitText()} with no event left to read`,
      () => `${this.label()} pushed nothing for ${timeoutMs} ms`,
    );
  }

  /** Reads on (as `next`) to the next event named `event`, passing over the others. */
  async until<N extends E['event']>(
    event: N,
    timeoutMs = 20_000,
  ): Promise<Extract<E, { event: N }>> {
    for (;;) {
      const next = await this.next(timeoutMs);
      if (next.event === event) return next as Extract<E, { event: N }>;
    }
  }

  /** `promise`, or a rejection naming `what` after `timeoutMs`. */
  within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`${this.label()}: no ${what} within ${timeoutMs} ms`)),
        timeoutMs,
      );
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  /** Sends `signal` to the process (by pid) unless it has exited; resolves when it has ended. */
  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<WorkerEnd> {
    if (!this.hasExited) this.child.kill(signal);
    return this.ended;
  }

  /** Asks the worker to shut down and exit; kills it if it has not ended within `timeoutMs`. */
  async stop(timeoutMs = 5_000): Promise<void> {
    if (this.end !== undefined) return;
    this.write({ op: BuiltInOp.exit });
    await this.within(this.ended, timeoutMs, 'exit').catch(() => this.kill());
  }

  private write(line: RequestLine): void {
    if (this.hasExited) return;
    this.child.stdin?.write(`${JSON.stringify(line)}\n`);
  }

  private handle(line: ReplyLine | ReadyLine | E): void {
    if ('reply' in line) {
      const request = this.pending.get(line.reply);
      this.pending.delete(line.reply);
      if (line.ok) request?.resolve(line.value);
      else request?.reject(new WorkerError(line.error));
    } else if ('ready' in line) {
      this.readyLine = true;
    } else {
      if (this.keepEvents) this.events.push(line);
      for (const listener of this.listeners) listener(line);
    }
    for (const check of this.checks) check();
  }

  /**
   * Resolves with what `found` returns once it returns something, checking on every line; rejects
   * once the worker has ended without it, or after `timeoutMs` (never, if not finite).
   */
  private watch<T>(
    found: () => T | undefined,
    timeoutMs: number,
    endedText: () => string,
    timeoutText: () => string,
  ): Promise<T> {
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.checks.delete(check);
      };
      const check = () => {
        const result = found();
        if (result !== undefined) {
          finish();
          resolve(result);
        } else if (this.end !== undefined) {
          finish();
          reject(new Error(`${endedText()}; stderr: ${this.stderrText}`));
        }
      };
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(() => {
          finish();
          reject(new Error(`${timeoutText()}; stderr: ${this.stderrText}`));
        }, timeoutMs);
      }
      this.checks.add(check);
      check();
    });
  }

  private assertKept(): void {
    if (!this.keepEvents) throw new Error(`${this.label()} keeps no events (keepEvents: false)`);
  }

  private label(): string {
    return `worker ${this.pid}`;
  }

  private exitText(): string {
    const code = this.end?.code ?? this.child.exitCode;
    const signal = this.end?.signal ?? this.child.signalCode;
    return `${this.label()} exited (code ${code}, signal ${signal})`;
  }
}
