// A process running IdempotentExecutor calls on command. Started by the integration tests with
// `startWorker`; see protocol.ts for the commands it reads on stdin and the events it prints.
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { IdempotentExecutor, type RunContext } from '../../../src/index.js';
import { describeError } from './describe-error.js';
import { CardDeclinedError, declinedCard, GatewayTimeoutError } from './errors.js';
import type { Command, FnSpec, WorkerConfig, WorkerEvent } from './protocol.js';

const config = JSON.parse(process.argv[2] ?? '{}') as WorkerConfig;

const print = (event: WorkerEvent) => {
  // Writes to a pipe are synchronous on Linux: the line is out before fn blocks the loop.
  process.stdout.write(`${JSON.stringify(event)}\n`);
};
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const client = new Redis(config.redisUrl);
client.on('error', () => {});
const counter = new Redis(config.counterUrl);
counter.on('error', () => {});

const executors = Array.from(
  { length: config.executors ?? 1 },
  () =>
    new IdempotentExecutor({
      redis: client,
      namespace: config.namespace,
      errorClasses: [CardDeclinedError, GatewayTimeoutError],
      ...(config.leaseMs === undefined ? {} : { leaseMs: config.leaseMs }),
      ...(config.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: config.waitTimeoutMs }),
      ...(config.storeTimeoutMs === undefined ? {} : { storeTimeoutMs: config.storeTimeoutMs }),
      ...(config.maxRecordBytes === undefined ? {} : { maxRecordBytes: config.maxRecordBytes }),
    }),
);

const gates = new Map<string, { promise: Promise<void>; open: () => void }>();
function gate(name: string) {
  let entry = gates.get(name);
  if (entry === undefined) {
    let open = () => {};
    const promise = new Promise<void>((resolve) => {
      open = resolve;
    });
    entry = { promise, open };
    gates.set(name, entry);
  }
  return entry;
}

function makeFn(id: string, spec: FnSpec) {
  return async (ctx: RunContext): Promise<unknown> => {
    if (spec.counterKey !== undefined) await counter.incr(spec.counterKey);
    const signal = spec.watchSignal ? ctx.signal : undefined;
    signal?.addEventListener('abort', () =>
      print({ event: 'aborted', id, code: (signal.reason as { code?: unknown })?.code }),
    );
    print({ event: 'started', id, pid: process.pid });
    if (spec.fence) print({ event: 'fenced', id, token: await ctx.fencingToken() });
    if (spec.blockMs !== undefined) {
      const until = Date.now() + spec.blockMs;
      while (Date.now() < until) {
        // Busy loop: no timer, no I/O, no renewal can run in this process meanwhile.
      }
    }
    if (spec.awaitAbortMs !== undefined && signal !== undefined && !signal.aborted) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, spec.awaitAbortMs);
        signal.addEventListener('abort', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    if (spec.gate !== undefined) await gate(spec.gate).promise;
    if (spec.sleepMs !== undefined) await sleep(spec.sleepMs);
    print({ event: 'finished', id, signalAborted: ctx.signal.aborted });
    const { result } = spec;
    switch (result.kind) {
      case 'value':
        return result.value;
      case 'declined-card':
        throw declinedCard();
      case 'gateway-timeout':
        throw new GatewayTimeoutError('the gateway did not answer');
      case 'unencodable': {
        if (result.what === 'function') return { receipt: () => 'not data' };
        if (result.what === 'symbol') return { receipt: Symbol('not data') };
        const circular: Record<string, unknown> = { receipt: 'r-1' };
        circular.self = circular;
        return circular;
      }
    }
  };
}

function run(command: Extract<Command, { op: 'run' }>): void {
  const fn = makeFn(command.id, command.fn);
  for (let call = 0; call < (command.calls ?? 1); call++) {
    const executor = executors[call % executors.length] as IdempotentExecutor;
    executor
      .run(command.key as string, fn, {
        ...(command.fingerprint === undefined ? {} : { fingerprint: command.fingerprint }),
        ...(command.leaseMs === undefined ? {} : { leaseMs: command.leaseMs }),
        ...(command.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: command.waitTimeoutMs }),
        ...(command.cacheErrors === false ? { shouldCacheError: () => false } : {}),
      })
      .then(
        (value) =>
          print({ event: 'result', id: command.id, call, pid: process.pid, ok: true, value }),
        (error: unknown) =>
          print({
            event: 'result',
            id: command.id,
            call,
            pid: process.pid,
            ok: false,
            error: describeError(error),
          }),
      );
  }
}

let exiting = false;
async function exit(): Promise<void> {
  if (exiting) return;
  exiting = true;
  // close() waits for running fns; one stuck on a gate must not keep this process alive.
  setTimeout(() => process.exit(0), 3_000).unref();
  await Promise.allSettled(executors.map((executor) => executor.close()));
  client.disconnect();
  counter.disconnect();
  process.exit(0);
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const command = JSON.parse(line) as Command;
  if (command.op === 'run') run(command);
  else if (command.op === 'open') gate(command.gate).open();
  else void exit();
});
// The test process went away: do not outlive it.
input.on('close', () => void exit());

print({ event: 'ready', pid: process.pid });
