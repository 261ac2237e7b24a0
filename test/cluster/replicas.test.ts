// `replicas: n` makes a completion wait (Redis WAIT) until n replicas hold the record before the
// caller gets its value; with fewer replicas the caller still gets it and an event says so.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { recordKeyOf } from '../../src/core/keys.js';
import { type ExecutorEvent, IdempotentExecutor } from '../../src/index.js';
import { RedisStore } from '../../src/store/redis/redis-store.js';
import { OwnRedisServer, uniqueNamespace, waitUntil } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

describe('replicas: 1 on one server', () => {
  let master: OwnRedisServer;
  let replica: OwnRedisServer;
  let lone: OwnRedisServer;
  const connections: Redis[] = [];
  const executors: IdempotentExecutor[] = [];
  const connect = (server: OwnRedisServer) => {
    const redis = new Redis(server.url);
    connections.push(redis);
    return redis;
  };

  before(async () => {
    master = await OwnRedisServer.start(['--repl-diskless-sync-delay', '0']);
    replica = await OwnRedisServer.start(['--replicaof', '127.0.0.1', String(master.port)]);
    lone = await OwnRedisServer.start();
    const admin = connect(replica);
    await waitUntil(
      async () => (await admin.info('replication')).includes('master_link_status:up'),
      20_000,
      50,
    );
  });
  after(async () => {
    await Promise.all(executors.map((executor) => executor.close()));
    for (const redis of connections) redis.disconnect();
    await Promise.all([master, replica, lone].map((server) => server?.stop()));
  });

  it('hands the caller its value only once the replica holds the record', async () => {
    // Prepare
    const namespace = uniqueNamespace('replicas');
    const events: ExecutorEvent[] = [];
    const executor = new IdempotentExecutor({
      redis: connect(master),
      namespace,
      replicas: 1,
      replicasTimeoutMs: 1_000,
      onEvent: (event) => events.push(event),
    });
    executors.push(executor);
    const onReplica = connect(replica);
    const onMaster = connect(master);
    const keys = Array.from({ length: 20 }, (_, i) => `order-${i}`);

    // Act: read each record from the replica as soon as its caller has the value.
    const seenOnReplica = await Promise.all(
      keys.map(async (key) => {
        await executor.run(key, async () => ({ key, charged: true }));
        return onReplica.getBuffer(recordKeyOf(namespace, key));
      }),
    );

    // Assess
    for (const [i, key] of keys.entries()) {
      const stored = await onMaster.getBuffer(recordKeyOf(namespace, key));
      assert.ok(stored !== null);
      assert.deepEqual(seenOnReplica[i], stored, `${key} on the replica when run() resolved`);
    }
    assert.deepEqual(
      events.filter((event) => event.type === 'under-replicated'),
      [],
    );
  });

  it('counts the replica acknowledging a record written on another connection', async () => {
    const store = new RedisStore({ redis: connect(master), commandTimeoutMs: 2_000 });
    try {
      const key = recordKeyOf(uniqueNamespace('replicas-store'), 'order');
      const lease = await store.claim(key, 1_000);
      assert.ok(lease !== null && !(lease instanceof Uint8Array));
      assert.equal(await lease.complete(Buffer.from([1, 2, 3]), 60_000), true);

      assert.equal(await store.waitForReplicas(key, 1, 1_000), 1);
    } finally {
      await store.close();
    }
  });

  it('emits under-replicated and still hands the value over when no replica acknowledges', async () => {
    // Prepare
    const events: ExecutorEvent[] = [];
    const executor = new IdempotentExecutor({
      redis: connect(lone),
      namespace: uniqueNamespace('replicas-none'),
      replicas: 1,
      replicasTimeoutMs: 200,
      onEvent: (event) => events.push(event),
    });
    executors.push(executor);

    // Act
    const value = await executor.run('order-1', async () => 'charged');

    // Assess
    assert.equal(value, 'charged');
    assert.deepEqual(
      events.filter((event) => event.type === 'under-replicated'),
      [{ type: 'under-replicated', key: 'order-1', requested: 1, acknowledged: 0 }],
    );
    assert.equal((await executor.inspect('order-1')).state, 'completed');
  });

  it('lets other calls through while a completion waits for a replica that does not answer', async () => {
    // Prepare: WAIT blocks the connection it runs on; it must not be the one other calls use.
    const namespace = uniqueNamespace('replicas-blocking');
    const executor = new IdempotentExecutor({
      redis: connect(lone),
      namespace,
      replicas: 1,
      replicasTimeoutMs: 1_500,
    });
    const withoutReplicas = new IdempotentExecutor({ redis: connect(lone), namespace });
    executors.push(executor, withoutReplicas);
    await withoutReplicas.run('done', async () => 'stored earlier');
    const settled: string[] = [];

    // Act: three completions wait for the missing replica; meanwhile other calls come in.
    const waiting = [1, 2, 3].map((i) =>
      executor.run(`slow-${i}`, async () => i).then(() => settled.push(`slow-${i}`)),
    );
    await sleep(50);
    const others = [
      executor.inspect('slow-1').then(() => settled.push('inspect')),
      executor
        .run('done', async () => 'ran again')
        .then((value) => settled.push(`replay ${value}`)),
    ];
    await Promise.all([...waiting, ...others]);

    // Assess: the other calls were answered while the completions still waited.
    assert.deepEqual(
      settled.slice(0, 2).sort(),
      ['inspect', 'replay stored earlier'],
      settled.join(', '),
    );
  });
});
