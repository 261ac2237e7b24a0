// A Sentinel-managed master with one replica: the executor is handed an ioredis client built for
// Sentinel; the master is SIGKILLed, Sentinel promotes the replica, and the executor carries on.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { type ExecutorEvent, IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { freePort, OwnRedisServer, uniqueNamespace, waitUntil } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** A correctness bound (a caller must settle), far above storeTimeoutMs: not a speed claim. */
const SETTLES_WITHIN_MS = 20_000;

/**
 * `call()`, called again while it fails with IDEMPOTENCY_STORE_UNAVAILABLE (fn did not run, so a
 * retry is safe), as a client retries while its connections find the new master.
 */
async function retryingUnavailable<T>(call: () => Promise<T>): Promise<T> {
  const startedAt = Date.now();
  for (;;) {
    try {
      return await call();
    } catch (error) {
      const unavailable =
        isIdempotencyError(error) && error.code === 'IDEMPOTENCY_STORE_UNAVAILABLE';
      if (!unavailable || Date.now() - startedAt > SETTLES_WITHIN_MS) throw error;
      await sleep(200);
    }
  }
}

/** A `redis-server --sentinel` watching `master` as `mymaster`, quorum 1. */
class OwnSentinel {
  private constructor(
    readonly port: number,
    private readonly process: ChildProcess,
    private readonly dir: string,
  ) {}

  static async start(master: OwnRedisServer): Promise<OwnSentinel> {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'idem-sentinel-'));
    const config = join(dir, 'sentinel.conf');
    writeFileSync(
      config,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor mymaster 127.0.0.1 ${master.port} 1`,
        'sentinel down-after-milliseconds mymaster 1000',
        'sentinel failover-timeout mymaster 5000',
        '',
      ].join('\n'),
    );
    const child = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
    const sentinel = new OwnSentinel(port, child, dir);
    await waitUntil(async () => (await sentinel.replicas().catch(() => 0)) >= 1, 30_000, 100);
    return sentinel;
  }

  /** Replicas of `mymaster` this sentinel knows and sees up. */
  async replicas(): Promise<number> {
    const reply = (await this.call('SENTINEL', 'REPLICAS', 'mymaster')) as string[][];
    return reply.filter((fields) => !String(fields[fields.indexOf('flags') + 1]).includes('down'))
      .length;
  }

  /** The port of the master this sentinel names now. */
  async masterPort(): Promise<number> {
    const [, port] = (await this.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', 'mymaster')) as [
      string,
      string,
    ];
    return Number(port);
  }

  async stop(): Promise<void> {
    if (this.process.exitCode === null && this.process.signalCode === null) {
      const exited = new Promise((resolve) => this.process.once('exit', resolve));
      this.process.kill('SIGKILL');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async call(...args: string[]): Promise<unknown> {
    const redis = new Redis({ port: this.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    redis.on('error', () => {});
    try {
      return await redis.call(args[0] as string, ...args.slice(1));
    } finally {
      redis.disconnect();
    }
  }
}

describe('the executor on a Sentinel-managed master', () => {
  let master: OwnRedisServer;
  let replica: OwnRedisServer;
  let sentinel: OwnSentinel;
  let client: Redis;
  const executors: IdempotentExecutor[] = [];

  before(async () => {
    master = await OwnRedisServer.start(['--repl-diskless-sync-delay', '0']);
    replica = await OwnRedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
    const admin = new Redis(replica.url);
    await waitUntil(
      async () => (await admin.info('replication')).includes('master_link_status:up'),
      20_000,
      50,
    );
    admin.disconnect();
    sentinel = await OwnSentinel.start(master);
  });
  after(async () => {
    await Promise.all(executors.map((executor) => executor.close()));
    client?.disconnect();
    await sentinel?.stop();
    await Promise.all([master, replica].map((server) => server?.stop()));
  });

  it('keeps a record acknowledged by the replica through a failover, and runs new keys after it', async () => {
    // Prepare: the client is the ioredis set-up for Sentinel (docs/scaling.md).
    client = new Redis({
      sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
      name: 'mymaster',
    });
    client.on('error', () => {});
    const events: ExecutorEvent[] = [];
    const executor = new IdempotentExecutor({
      redis: client,
      namespace: uniqueNamespace('sentinel'),
      leaseMs: 5_000,
      replicas: 1,
      replicasTimeoutMs: 1_000,
      onEvent: (event) => events.push(event),
    });
    executors.push(executor);
    const before = await executor.run('order-1', async () => 'charged once');

    // Act: the master dies; calls keep coming every 200 ms until Sentinel names the replica.
    await master.stop();
    const during: Promise<string>[] = [];
    const startedAt = Date.now();
    while ((await sentinel.masterPort()) !== replica.port) {
      assert.ok(Date.now() - startedAt < 30_000, 'Sentinel did not fail over');
      const key = `during-${during.length}`;
      const calledAt = Date.now();
      during.push(
        executor
          .run(key, async () => 'ran')
          .then(
            (value) => {
              assert.ok(Date.now() - calledAt < SETTLES_WITHIN_MS);
              return value;
            },
            (error: unknown) => {
              assert.ok(Date.now() - calledAt < SETTLES_WITHIN_MS);
              return isIdempotencyError(error) ? error.code : `unexpected: ${String(error)}`;
            },
          ),
      );
      await sleep(200);
    }
    const failoverMs = Date.now() - startedAt;
    const replayed = await retryingUnavailable(() =>
      executor.run('order-1', async () => 'charged twice'),
    );
    const fresh = await retryingUnavailable(() =>
      executor.run('order-2', async () => 'new after failover'),
    );
    const outcomes = await Promise.all(during);

    // Assess
    console.log(
      `sentinel failover after ${failoverMs} ms; calls meanwhile: ${outcomes.join(', ')}`,
    );
    assert.equal(before, 'charged once');
    assert.equal(replayed, 'charged once');
    assert.equal(fresh, 'new after failover');
    for (const outcome of outcomes) {
      assert.ok(['ran', 'IDEMPOTENCY_STORE_UNAVAILABLE'].includes(outcome), outcome);
    }
    const underReplicated = events.flatMap((event) =>
      event.type === 'under-replicated' ? [[event.key, event.acknowledged]] : [],
    );
    // The first record was acknowledged by the replica; the promoted replica has none of its own.
    assert.ok(!underReplicated.some(([key]) => key === 'order-1'));
    assert.ok(
      underReplicated.some(([key, acknowledged]) => key === 'order-2' && acknowledged === 0),
    );
  });
});
