// executor.close() releases every socket and timer the store opened, whatever state its
// connections are in: connected with a waiter subscribed, reconnecting to a killed Redis with
// commands queued, reconnecting to a restarted one, waiting on a hung one (SIGSTOP: sockets open,
// no replies), and on a Redis Cluster, healthy or failing over. The executor runs in a child
// process (test/redis/workers/close-handles-worker.ts) that lists what is still active once
// close() has resolved, and must then exit on its own.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { LocalCluster } from '../cluster/support/local-cluster.js';
import { OwnRedisServer, uniqueNamespace, waitUntil } from '../helpers/redis.js';
import { WorkerProcess } from '../helpers/worker/parent.js';
import type {
  Closed,
  CloseHandlesConfig,
  CloseHandlesEvent,
  CloseHandlesRequests,
} from './workers/close-handles-worker.js';

const WORKER = new URL('./workers/close-handles-worker.ts', import.meta.url);
/**
 * Longer than any wait the fixed store needs, shorter than what the unfixed one leaves behind:
 * ioredis's disconnect timer (2 s by default) and queued commands' timeouts (storeTimeoutMs).
 */
const EXITS_WITHIN_MS = 1_500;
/**
 * A correctness bound, not a speed claim: close() does not sit out a timer until it fires by
 * itself (a queued command's timeout, a fallback bounded by storeTimeoutMs).
 */
const CLOSES_WITHIN_MS = 1_500;
const STORE_TIMEOUT_MS = 3_000;
const HELD_KEY = 'held-elsewhere';
/** The shape of a lease token: the waiter takes the key for a running execution elsewhere. */
const FOREIGN_LEASE = 'f'.repeat(32);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A connection for the test's own commands, which never retries. */
function adminOf(port: number): Redis {
  const admin = new Redis({
    port,
    host: '127.0.0.1',
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  admin.on('error', () => {});
  return admin;
}

async function withAdmin<T>(port: number, use: (admin: Redis) => Promise<T>): Promise<T> {
  const admin = adminOf(port);
  try {
    return await use(admin);
  } finally {
    admin.disconnect();
  }
}

/** How many clients of the server on `port` subscribe `channel` (sharded on a cluster). */
function subscribers(port: number, channel: string, sharded: boolean): Promise<number> {
  return withAdmin(port, async (admin) => {
    const reply = (await admin.call('PUBSUB', sharded ? 'SHARDNUMSUB' : 'NUMSUB', channel)) as [
      string,
      number,
    ];
    return Number(reply[1]);
  }).catch(() => 0);
}

/**
 * Starts the worker with a caller waiting (subscribed) on the key whose lease was planted on the
 * server at `port`, brings its connections into a state with `act`, closes the executor, and
 * returns what the worker reported and how it exited.
 */
async function closeIn(
  config: CloseHandlesConfig,
  port: () => Promise<number>,
  sharded: boolean,
  act: (channel: string) => Promise<void>,
): Promise<{ closed: Closed; exitCode: number | null | 'still running' }> {
  const recordKey = recordKeyOf(config.namespace, config.heldKey);
  await withAdmin(await port(), (admin) => admin.set(recordKey, FOREIGN_LEASE, 'PX', 120_000));
  const worker = new WorkerProcess<CloseHandlesRequests, CloseHandlesEvent>(WORKER, config);
  try {
    await worker.until('waiting');
    const channel = `${recordKey}:done`;
    await waitUntil(async () => (await subscribers(await port(), channel, sharded)) >= 1, 10_000);

    await act(channel);
    const closed = await worker.request('close', {}, 20_000);
    const exitCode = await Promise.race([
      worker.ended.then((end) => end.code),
      sleep(EXITS_WITHIN_MS).then(() => 'still running' as const),
    ]);
    return { closed, exitCode };
  } finally {
    void worker.kill();
  }
}

function assertNothingLeft(result: { closed: Closed; exitCode: number | null | 'still running' }) {
  assert.deepEqual(
    result.closed.leaked,
    [],
    `nothing of the library is active after close(); made at:\n${result.closed.origins.join('\n\n')}`,
  );
  assert.ok(
    result.closed.closeTookMs < CLOSES_WITHIN_MS,
    `close() resolved after ${result.closed.closeTookMs} ms, not within ${CLOSES_WITHIN_MS} ms`,
  );
  assert.equal(result.closed.outcomes[0], 'IDEMPOTENCY_STORE_UNAVAILABLE', 'the waiter was failed');
  assert.equal(result.exitCode, 0, `the process exits on its own within ${EXITS_WITHIN_MS} ms`);
}

describe('executor.close() on one Redis server', () => {
  let server: OwnRedisServer;
  let stopped = false;
  const config = (): CloseHandlesConfig => ({
    namespace: uniqueNamespace('close-handles'),
    redis: { url: server.url },
    storeTimeoutMs: STORE_TIMEOUT_MS,
    heldKey: HELD_KEY,
  });
  const port = async () => server.port;

  const states: { readonly when: string; readonly act: (channel: string) => Promise<void> }[] = [
    { when: 'connected, with a waiter subscribed', act: async () => {} },
    {
      when: 'Redis was killed (reconnecting, commands queued)',
      act: async () => {
        await server.stop('SIGKILL');
        await sleep(300);
      },
    },
    {
      when: 'Redis has just been restarted (connections coming back)',
      act: async () => {
        await server.stop('SIGKILL');
        await sleep(300);
        await server.startProcess();
      },
    },
    {
      when: 'Redis was restarted and the waiter subscribed again',
      act: async (channel) => {
        await server.stop('SIGKILL');
        await sleep(300);
        await server.startProcess();
        await waitUntil(async () => (await subscribers(server.port, channel, false)) >= 1, 10_000);
      },
    },
    {
      when: 'Redis hangs (SIGSTOP: sockets open, nothing answered)',
      act: async () => {
        const { pid } = server;
        assert.ok(pid !== undefined);
        process.kill(pid, 'SIGSTOP');
        stopped = true;
        await sleep(100);
      },
    },
  ];

  for (const { when, act } of states) {
    it(`releases every socket and timer when ${when}`, async () => {
      // Prepare: with AOF, the planted lease outlives a restart, so the waiter keeps waiting.
      const dir = mkdtempSync(join(tmpdir(), 'close-handles-'));
      server = await OwnRedisServer.start([
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--dir',
        dir,
      ]);
      stopped = false;
      try {
        // Act
        const result = await closeIn(config(), port, false, act);

        // Assess
        assertNothingLeft(result);
      } finally {
        if (stopped && server.pid !== undefined) process.kill(server.pid, 'SIGCONT');
        await server.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});

describe('executor.close() on a Redis Cluster', () => {
  let cluster: LocalCluster;
  before(async () => {
    cluster = await LocalCluster.start({ masters: 3, replicasPerMaster: 1, nodeTimeoutMs: 1_000 });
  });
  after(async () => {
    await cluster?.stop();
  });

  const config = (): CloseHandlesConfig => ({
    namespace: uniqueNamespace('close-handles'),
    redis: { cluster: cluster.running().map((node) => node.port) },
    storeTimeoutMs: STORE_TIMEOUT_MS,
    heldKey: HELD_KEY,
  });
  const masterPortOf = (namespace: string) => async () =>
    (await cluster.masterOf(keySlot(recordKeyOf(namespace, HELD_KEY)))).port;

  it('releases every socket and timer when healthy, with a waiter subscribed', async () => {
    // Prepare
    const settings = config();

    // Act
    const result = await closeIn(settings, masterPortOf(settings.namespace), true, async () => {});

    // Assess
    assertNothingLeft(result);
  });

  it('releases every socket and timer while the master of the waited key fails over', async () => {
    // Prepare
    const settings = config();
    const master = await cluster.masterOf(keySlot(recordKeyOf(settings.namespace, HELD_KEY)));

    // Act: the master dies; its replica takes over after about the node timeout, so the close
    // lands while the client and the sharded subscriber are still reconnecting and repairing.
    const result = await closeIn(
      settings,
      async () => master.port,
      true,
      async () => {
        await cluster.kill(master);
        await sleep(300);
      },
    );

    // Assess
    assertNothingLeft(result);
  });
});
