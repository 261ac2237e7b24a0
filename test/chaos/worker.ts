// One chaos worker process: runs its share of the storm through an IdempotentExecutor, writes a
// ledger row from every execution of fn, lands the faults the parent arms, and reports every
// caller's outcome. Started by run.ts; see protocol.ts for what it reads and prints.
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { ErrorCode, IdempotentExecutor, type RunContext } from '../../src/index.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { CompletionTrapStore } from './completion-trap.js';
import { LedgerWriter } from './ledger.js';
import {
  type ArmedFault,
  type ChaosValue,
  keyOfCaller,
  now,
  type WorkerCommand,
  type WorkerConfig,
  type WorkerEvent,
} from './protocol.js';

const baseline = process.getActiveResourcesInfo();
const config = JSON.parse(process.argv[2] ?? '') as WorkerConfig;
const { pid } = process;

/** Pipe writes are synchronous on Linux: a line is out before a busy loop or a SIGKILL. */
function print(event: WorkerEvent): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

process.on('unhandledRejection', (reason) => {
  print({ ev: 'unhandled', kind: 'unhandledRejection', message: String(reason) });
});
process.on('uncaughtException', (error) => {
  print({ ev: 'unhandled', kind: 'uncaughtException', message: String(error) });
});

const armed: ArmedFault[] = [];
/** Record keys whose completion this process must not live to store. */
const doomed = new Map<string, { key: string; token: number }>();
/** Each key's latest execution here, to tie a LEASE_LOST to the execution it refused. */
const ownTokens = new Map<string, number>();

// Configured as a user would hand it over. The name lets the parent find (and CLIENT KILL)
// this process's connections: duplicate() hands it to every connection the store opens.
const client = new Redis(config.redisUrl, { connectionName: `chaos-w${config.slot}-${pid}` });
client.on('error', () => {});
const redisStore = new RedisStore({ redis: client, commandTimeoutMs: config.storeTimeoutMs });
const store = new CompletionTrapStore(redisStore, (recordKey) => {
  const victim = doomed.get(recordKey);
  if (victim === undefined) return;
  print({ ev: 'dying', phase: 'after-fn', key: victim.key, token: victim.token, t: now() });
  process.kill(pid, 'SIGKILL');
});
const executor = new IdempotentExecutor({
  store,
  namespace: config.namespace,
  leaseMs: config.leaseMs,
  waitTimeoutMs: config.waitTimeoutMs,
  // shouldCacheError left at its default, as users do: a store error escaping fn
  // (fencingToken() while Redis restarts) is one of the transient errors never kept.
  onEvent: (event) => {
    if (event.type === 'lease-lost' || event.type === 'store-failed') {
      print({ ev: event.type, key: event.key, t: now() });
    }
  },
});
const ledger = new LedgerWriter(config.pgUrl, Math.min(config.concurrency, 8));

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function fn(ctx: RunContext): Promise<ChaosValue> {
  const startedAt = now();
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
  const fault = armed.shift();
  if (fault?.kind === 'kill-mid') {
    print({ ev: 'dying', phase: 'mid-fn', key: ctx.key, token, t: now() });
    process.kill(pid, 'SIGKILL');
  } else if (fault?.kind === 'kill-after') {
    doomed.set(recordKeyOf(config.namespace, ctx.key), { key: ctx.key, token });
  } else if (fault?.kind === 'stall') {
    print({ ev: 'stall-start', key: ctx.key, token, t: now() });
    const until = Date.now() + fault.ms;
    while (Date.now() < until) {
      // Busy wait: no timer, no renewal, no I/O runs in this process meanwhile.
    }
    print({ ev: 'stall-end', key: ctx.key, token, t: now() });
  }
  return { key: ctx.key, token };
}

async function call(id: number): Promise<void> {
  const key = keyOfCaller(id, config.dups);
  const t0 = now();
  try {
    const value = (await executor.run(key, fn)) as ChaosValue;
    print({ ev: 'settled', id, key, pid, t0, t1: now(), token: value.token });
  } catch (error) {
    const code = String((error as { code?: unknown }).code ?? (error as Error).name);
    const ownToken = code === ErrorCode.LEASE_LOST ? ownTokens.get(key) : undefined;
    print({
      ev: 'settled',
      id,
      key,
      pid,
      t0,
      t1: now(),
      code,
      ...(ownToken === undefined ? {} : { ownToken }),
    });
  }
}

async function storm(callers: readonly number[]): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < callers.length) {
      const id = callers[next++] as number;
      await call(id);
    }
  };
  await Promise.all(Array.from({ length: config.concurrency }, lane));
  print({ ev: 'drained' });
}

let finishing = false;

async function finish(): Promise<void> {
  finishing = true;
  await executor.close();
  await store.close();
  client.disconnect();
  await ledger.close();
  input.close();
  process.stdin.destroy();
  // Sockets finish closing on a later turn of the loop.
  await sleep(200);
  print({ ev: 'closed', leaked: leakedResources(), unlanded: armed.map((fault) => fault.kind) });
  process.exit(0);
}

/** Active resources beyond those present before anything was opened (stdio pipes). */
function leakedResources(): string[] {
  const left = [...baseline];
  const leaked: string[] = [];
  for (const resource of process.getActiveResourcesInfo()) {
    const index = left.indexOf(resource);
    if (index >= 0) left.splice(index, 1);
    else leaked.push(resource);
  }
  return leaked;
}

const input = createInterface({ input: process.stdin });
input.on('line', (line) => {
  const command = JSON.parse(line) as WorkerCommand;
  if (command.cmd === 'start') void storm(command.callers);
  else if (command.cmd === 'arm') armed.push(command.fault);
  else void finish();
});
// The parent is gone (it crashed or was killed): do not run on alone.
input.on('close', () => {
  if (!finishing) process.exit(1);
});
print({ ev: 'ready', pid });
