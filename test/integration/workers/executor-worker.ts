// A process running IdempotentExecutor calls on request, started by the integration tests
// through ExecutorProcess; see protocol.ts for what it answers and pushes.
import { Redis } from 'ioredis';
import { IdempotentExecutor, type RunContext } from '../../../src/index.js';
import { emit, gate, serve, workerConfig } from '../../helpers/worker/child.js';
import { CardDeclinedError, declinedCard, GatewayTimeoutError } from './errors.js';
import type { ExecutorEvent, ExecutorRequests, FnSpec, WorkerConfig } from './protocol.js';

const config = workerConfig<WorkerConfig>();
const push: (event: ExecutorEvent) => void = emit;
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

function makeFn(id: string, spec: FnSpec) {
  return async (ctx: RunContext): Promise<unknown> => {
    if (spec.counterKey !== undefined) await counter.incr(spec.counterKey);
    const signal = spec.watchSignal ? ctx.signal : undefined;
    signal?.addEventListener('abort', () =>
      push({ event: 'aborted', id, code: (signal.reason as { code?: unknown })?.code }),
    );
    push({ event: 'started', id, pid: process.pid });
    if (spec.fence) push({ event: 'fenced', id, token: await ctx.fencingToken() });
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
    if (spec.gate !== undefined) await gate(spec.gate);
    if (spec.sleepMs !== undefined) await sleep(spec.sleepMs);
    push({ event: 'finished', id, signalAborted: ctx.signal.aborted });
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

serve<ExecutorRequests>(
  {
    run: (request) => {
      const executor = executors[request.call % executors.length] as IdempotentExecutor;
      return executor.run(request.key as string, makeFn(request.id, request.fn), {
        ...(request.fingerprint === undefined ? {} : { fingerprint: request.fingerprint }),
        ...(request.leaseMs === undefined ? {} : { leaseMs: request.leaseMs }),
        ...(request.waitTimeoutMs === undefined ? {} : { waitTimeoutMs: request.waitTimeoutMs }),
        ...(request.cacheErrors === false ? { shouldCacheError: () => false } : {}),
      });
    },
  },
  {
    shutdown: async () => {
      await Promise.allSettled(executors.map((executor) => executor.close()));
      client.disconnect();
      counter.disconnect();
    },
  },
);
