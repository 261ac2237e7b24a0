// A process that builds an executor on a Redis (or a Redis Cluster) the test controls, leaves one
// caller waiting on a lease the test planted, and closes the executor when told to, with one more
// call just sent. It reports what is still open once close() has resolved, then must exit on its
// own: nothing of the library may keep it alive. Driven by close-handles.test.ts on the shared
// worker protocol (test/helpers/worker).
import { createHook } from 'node:async_hooks';
import { Cluster, Redis } from 'ioredis';
import { IdempotentExecutor, isIdempotencyError } from '../../../src/index.js';
import {
  emit,
  resourcesOpenedSince,
  serve,
  stopServing,
  workerConfig,
} from '../../helpers/worker/child.js';

/** What the test passes as the one argument, in JSON. */
export interface CloseHandlesConfig {
  readonly namespace: string;
  /** One server's URL, or the startup nodes of a cluster. */
  readonly redis: { readonly url: string } | { readonly cluster: readonly number[] };
  readonly storeTimeoutMs: number;
  /** The key whose lease the test planted: the waiter waits on it. */
  readonly heldKey: string;
}

/** Pushed once the waiter is waiting (subscribed) on the held key. */
export interface CloseHandlesEvent {
  readonly event: 'waiting';
}

/** What the worker found once close() resolved. */
export interface Closed {
  /** How long close() took, ms. */
  readonly closeTookMs: number;
  /** Resources active once close() resolved, beyond those active before the executor. */
  readonly leaked: readonly string[];
  /** What the waiter and the call sent just before close() got. */
  readonly outcomes: readonly string[];
  /** Where each timer and socket still alive was made (to tell what leaked). */
  readonly origins: readonly string[];
}

export interface CloseHandlesRequests {
  /** Sends one more call, closes the executor, stops serving, and answers what it found. */
  close(request: Record<string, never>): Closed;
}

const config = workerConfig<CloseHandlesConfig>();

function outcomeOf(call: Promise<unknown>): Promise<string> {
  return call.then(
    (value) => `value ${String(value)}`,
    (error: unknown) => (isIdempotencyError(error) ? error.code : `unexpected ${String(error)}`),
  );
}

/** Timers and sockets alive now, each with the stack that made it. */
const alive = new Map<number, string>();
createHook({
  init(id, type) {
    if (type !== 'Timeout' && type !== 'TCPWRAP') return;
    const stack = (new Error().stack ?? '').split('\n').slice(3);
    alive.set(id, `${type}\n${stack.filter((line) => !line.includes('node:internal')).join('\n')}`);
  },
  destroy(id) {
    alive.delete(id);
  },
}).enable();

serve<CloseHandlesRequests>({
  close: async () => {
    // A call whose claim goes out on the connections in whatever state the test left them.
    const late = outcomeOf(executor.run('sent-before-close', async () => 'late ran fn'));
    await new Promise((resolve) => setTimeout(resolve, 50));
    const closing = Date.now();
    await executor.close();
    const closeTookMs = Date.now() - closing;
    const leaked = resourcesOpenedSince(baseline);
    const origins = leaked.length > 0 ? [...alive.values()] : [];
    const outcomes = await Promise.all([waiter, late]);
    // No process.exit(): the test waits for this process to end by itself.
    stopServing();
    return { closeTookMs, leaked, outcomes, origins };
  },
});
// Active now: stdio only. Taken before any connection exists.
const baseline = process.getActiveResourcesInfo();

// The user's client stays unconnected (lazyConnect): the store sends nothing on it and opens
// connections of its own, which are what this process checks.
const client =
  'url' in config.redis
    ? new Redis(config.redis.url, { lazyConnect: true })
    : new Cluster(
        config.redis.cluster.map((port) => ({ host: '127.0.0.1', port })),
        { lazyConnect: true },
      );
client.on('error', () => {});
const executor = new IdempotentExecutor({
  redis: client,
  namespace: config.namespace,
  storeTimeoutMs: config.storeTimeoutMs,
  waitTimeoutMs: 60_000,
});

await executor.run('warm-up', async () => 'ok');
// Subscribes to the held key's channel and waits (the test checks the subscription is there).
const waiter = outcomeOf(executor.run(config.heldKey, async () => 'waiter ran fn'));
emit({ event: 'waiting' } satisfies CloseHandlesEvent);
