// One chaos worker process: runs its share of the storm through an IdempotentExecutor, writes a
// ledger row from every execution of fn, lands the faults the parent arms, and reports every
// caller's outcome. Started by storm.ts; see protocol.ts for what it answers and pushes.
import type { PoolClient } from 'pg';
import { recordKeyOf } from '../../src/core/keys.js';
import { ErrorCode, IdempotentExecutor, type RunContext } from '../../src/index.js';
import { transactional } from '../../src/store/postgres/index.js';
import {
  emit,
  resourcesOpenedSince,
  serve,
  stopServing,
  workerConfig,
} from '../helpers/worker/child.js';
import { now } from '../helpers/worker/protocol.js';
import { CompletionTrapStore } from './completion-trap.js';
import { LedgerWriter, writeLedgerRow } from './ledger.js';
import {
  type ArmedFault,
  type ChaosValue,
  keyOfCaller,
  type WorkerConfig,
  type WorkerEvent,
  type WorkerRequests,
  workerName,
} from './protocol.js';
import { openWorkerStore } from './worker-store.js';

const baseline = process.getActiveResourcesInfo();
const config = workerConfig<WorkerConfig>();
const { pid } = process;

/** Out before a busy loop or a SIGKILL that follows (see `emit`). */
const print: (event: WorkerEvent) => void = emit;

process.on('unhandledRejection', (reason) => {
  print({ event: 'unhandled', kind: 'unhandledRejection', message: describe(reason) });
});
process.on('uncaughtException', (error) => {
  print({ event: 'unhandled', kind: 'uncaughtException', message: describe(error) });
});

/** The error and where it came from, on one line. */
function describe(error: unknown): string {
  const stack = (error as Error | undefined)?.stack;
  if (typeof stack !== 'string') return String(error);
  return stack
    .split('\n')
    .slice(0, 4)
    .map((line) => line.trim())
    .join(' / ');
}

const armed: ArmedFault[] = [];
/** Record keys whose completion this process must not live to store. */
const doomed = new Map<string, { key: string; token: number }>();
/** Each key's latest execution here, to tie a LEASE_LOST to the execution it refused. */
const ownTokens = new Map<string, number>();

const backend = openWorkerStore(config.store, workerName(config.slot, pid), config.storeTimeoutMs);
const store = new CompletionTrapStore(backend.store, (recordKey) => {
  const victim = doomed.get(recordKey);
  if (victim === undefined) return;
  print({ event: 'dying', phase: 'after-fn', key: victim.key, token: victim.token, t: now() });
  process.kill(pid, 'SIGKILL');
});
const executor = new IdempotentExecutor({
  store,
  namespace: config.namespace,
  leaseMs: config.leaseMs,
  waitTimeoutMs: config.waitTimeoutMs,
  // shouldCacheError left at its default, as users do: a store error escaping fn
  // (fencingToken() while Redis restarts) is one of the transient errors never kept. An error
  // of fn's own transaction (its connection killed) is fn's error, and is kept.
  onEvent: (event) => {
    if (event.type === 'lease-lost' || event.type === 'store-failed') {
      print({ event: event.type, key: event.key, t: now() });
    } else if (event.type === 'executed' && !event.ok && !event.cached) {
      print({ event: 'released', key: event.key, t: now() });
    }
  },
});
// On PostgreSQL the log shares the server with the store: fewer connections, and a name of its
// own, so no fault aimed at the worker's connections hits it.
const ledger =
  config.store.kind !== 'postgres'
    ? new LedgerWriter(config.pgUrl, Math.min(config.concurrency, 8))
    : new LedgerWriter(config.pgUrl, 4, 'chaos-ledger');

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * One execution: take the fencing token, work a little, log the execution; in the
 * transactional mode also write the ledger row in fn's transaction (`tx`). Then land the fault
 * armed here, if any.
 */
async function body(
  ctx: RunContext,
  tx: PoolClient | undefined,
  startedAt: number,
): Promise<ChaosValue> {
  const token = await ctx.fencingToken();
  ownTokens.set(ctx.key, token);
  await sleep(config.fnMinMs + Math.random() * (config.fnMaxMs - config.fnMinMs));
  await ledger.record({
    key: ctx.key,
    slot: config.slot,
    pid,
    token,
    startedAt,
    writtenAt: now(),
  });
  if (tx !== undefined) await writeLedgerRow(tx, { key: ctx.key, pid, token });
  const fault = armed.shift();
  if (fault?.kind === 'kill-mid') {
    print({ event: 'dying', phase: 'mid-fn', key: ctx.key, token, t: now() });
    process.kill(pid, 'SIGKILL');
  } else if (fault?.kind === 'kill-after') {
    doomed.set(recordKeyOf(config.namespace, ctx.key), { key: ctx.key, token });
  } else if (fault?.kind === 'stall') {
    print({ event: 'stall-start', key: ctx.key, token, t: now() });
    const until = Date.now() + fault.ms;
    while (Date.now() < until) {
      // Busy wait: no timer, no renewal, no I/O runs in this process meanwhile.
    }
    print({ event: 'stall-end', key: ctx.key, token, t: now() });
  } else if (fault?.kind === 'hold') {
    print({ event: 'holding', key: ctx.key, token, t: now() });
    await sleep(fault.ms);
  }
  return { key: ctx.key, token };
}

const transactionalStore =
  config.store.kind === 'postgres' && config.store.transactional ? backend.postgres : undefined;

function fn(ctx: RunContext): Promise<ChaosValue> {
  // Taken before transactional()'s own fencing-token call and BEGIN: a key's executions are
  // ordered by when they began, and a process may stall between the two.
  const startedAt = now();
  if (transactionalStore === undefined) return body(ctx, undefined, startedAt);
  return transactional(transactionalStore, (inner, tx) => body(inner, tx, startedAt))(ctx);
}

/** Runs caller `id` and reports what it got; resolves with the error's code, if any. */
async function call(id: number): Promise<string | undefined> {
  const key = keyOfCaller(id, config.dups);
  const t0 = now();
  try {
    const value = (await executor.run(key, fn)) as ChaosValue;
    print({ event: 'settled', id, key, pid, t0, t1: now(), token: value.token });
    return undefined;
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? (error as Error).name);
    const ownToken = code === ErrorCode.LEASE_LOST ? ownTokens.get(key) : undefined;
    print({
      event: 'settled',
      id,
      key,
      pid,
      t0,
      t1: now(),
      code,
      ...(ownToken === undefined ? {} : { ownToken }),
    });
    return code;
  }
}

/** With `until`, caller i starts no earlier than its share of the time left (a soak's pace). */
async function storm(callers: readonly number[], until: number | undefined): Promise<void> {
  let next = 0;
  const start = Date.now();
  const interval = until === undefined ? 0 : Math.max(0, until - start) / callers.length;
  const lane = async () => {
    while (next < callers.length) {
      const index = next++;
      const id = callers[index] as number;
      const due = start + index * interval;
      if (due > Date.now()) await sleep(due - Date.now());
      const code = await call(id);
      // A client backing off: without it a store that refuses at once would burn through the
      // schedule while it is away, and leave no calls for the faults planned after.
      if (code === ErrorCode.STORE_UNAVAILABLE && config.unavailableBackoffMs > 0) {
        await sleep(config.unavailableBackoffMs);
      }
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, lane));
  print({ event: 'drained' });
}

const sampler =
  config.sampleMs > 0
    ? setInterval(() => {
        const { heapUsed, rss } = process.memoryUsage();
        print({ event: 'memory', t: now(), heapUsed, rss });
      }, config.sampleMs)
    : undefined;

async function finish(): Promise<void> {
  clearInterval(sampler);
  await executor.close();
  await store.close();
  await backend.close();
  await ledger.close();
  stopServing();
  // Leaked: active beyond what was there before anything was opened (stdio pipes). A socket
  // ended by close() stays active, half-closed, until its peer's FIN: on a loaded machine that
  // took more than 200 ms (the proxy and PostgreSQL answer late), and counted as a leak. A leak
  // outlasts the wait.
  let leaked = resourcesOpenedSince(baseline);
  for (const until = Date.now() + 2_000; leaked.length > 0 && Date.now() < until; ) {
    await sleep(50);
    leaked = resourcesOpenedSince(baseline);
  }
  print({ event: 'closed', leaked, unlanded: armed.map((fault) => fault.kind) });
  process.exit(0);
}

// No shutdown of its own: a worker whose parent is gone (crashed or killed) exits at once.
serve<WorkerRequests>({
  start: ({ callers, until }) => void storm(callers, until),
  arm: ({ fault }) => {
    armed.push(fault);
  },
  finish: () => void finish(),
});
