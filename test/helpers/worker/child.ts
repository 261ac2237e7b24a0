// The worker's side of the protocol (protocol.ts): its config, a dispatcher that answers the
// parent's requests with named handlers, events, gates the parent opens, and what is left open.
// Importing this module opens nothing: a worker can take a baseline of its resources first.
import { createInterface, type Interface } from 'node:readline';
import {
  type BodyOf,
  BuiltInOp,
  describeError,
  type ReadyLine,
  type ReplyLine,
  type ReplyOf,
  type RequestLine,
  type WorkerEvent,
} from './protocol.js';

/** One handler per request: it answers with its return value, or with the error it throws. */
export type Handlers<R> = {
  readonly [Op in keyof R]: (body: BodyOf<R, Op>) => ReplyOf<R, Op> | Promise<ReplyOf<R, Op>>;
};

export interface ServeOptions {
  /**
   * Closes what the worker opened, when the parent stops it or goes away. Bounded at
   * {@link SHUTDOWN_MS}: a close that waits for an fn stuck on a gate must not keep the process.
   */
  readonly shutdown?: () => Promise<void>;
}

const SHUTDOWN_MS = 3_000;

/** The worker's config: its one command-line argument, JSON. */
export function workerConfig<Config>(): Config {
  return JSON.parse(process.argv[2] ?? '{}') as Config;
}

/** Pipe writes are synchronous on Linux: the line is out before a busy loop or a SIGKILL. */
function writeLine(line: WorkerEvent | ReplyLine | ReadyLine): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Pushes an event to the parent, at once. */
export function emit<E extends WorkerEvent>(event: E): void {
  writeLine(event);
}

let input: Interface | undefined;
/** The worker is closing its input itself: the end of stdin does not mean the parent is gone. */
let leaving = false;

/**
 * Answers the parent's requests from now on, and tells it this worker is ready. A request runs
 * its handler synchronously, on the turn of the loop that read it.
 */
export function serve<R>(handlers: Handlers<R>, options: ServeOptions = {}): void {
  input = createInterface({ input: process.stdin });
  input.on('line', (text) => {
    const request = JSON.parse(text) as RequestLine;
    if (request.op === BuiltInOp.exit) void exit(options.shutdown);
    else if (request.op === BuiltInOp.open) gateOf((request.body as { gate: string }).gate).open();
    else answer(handlers as Record<string, (body: unknown) => unknown>, request);
  });
  // The parent went away: do not outlive it.
  input.on('close', () => {
    if (!leaving) void exit(options.shutdown);
  });
  writeLine({ ready: process.pid });
}

function answer(handlers: Record<string, (body: unknown) => unknown>, request: RequestLine): void {
  const handler = handlers[request.op];
  const outcome = new Promise((resolve) => {
    if (handler === undefined) throw new Error(`this worker has no handler for ${request.op}`);
    resolve(handler(request.body));
  });
  const { id } = request;
  // Nobody waits for a reply: a failure stays unhandled, as it would in a handler of its own.
  if (id === undefined) return void outcome;
  outcome.then(
    (value) => writeLine({ reply: id, ok: true, value }),
    (error: unknown) => writeLine({ reply: id, ok: false, error: describeError(error) }),
  );
}

async function exit(shutdown: ServeOptions['shutdown']): Promise<void> {
  if (leaving) return;
  leaving = true;
  setTimeout(() => process.exit(0), SHUTDOWN_MS).unref();
  try {
    await shutdown?.();
  } finally {
    process.exit(0);
  }
}

/**
 * Stops reading the parent's requests, so nothing of the protocol keeps this process alive (a
 * worker that must exit on its own, or counts what is left open). Events can still be sent.
 */
export function stopServing(): void {
  leaving = true;
  input?.close();
  process.stdin.destroy();
}

const gates = new Map<string, { readonly opened: Promise<void>; readonly open: () => void }>();

function gateOf(name: string) {
  let entry = gates.get(name);
  if (entry === undefined) {
    let open = () => {};
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    entry = { opened, open };
    gates.set(name, entry);
  }
  return entry;
}

/** Resolves once the parent opens gate `name` (`worker.open(name)`), before or after this call. */
export function gate(name: string): Promise<void> {
  return gateOf(name).opened;
}

/**
 * Active resources (`process.getActiveResourcesInfo()`) that were not in `baseline`, counted by
 * kind: what a worker left open.
 */
export function resourcesOpenedSince(baseline: readonly string[]): string[] {
  const left = [...baseline];
  const opened: string[] = [];
  for (const resource of process.getActiveResourcesInfo()) {
    const index = left.indexOf(resource);
    if (index >= 0) left.splice(index, 1);
    else opened.push(resource);
  }
  return opened;
}
