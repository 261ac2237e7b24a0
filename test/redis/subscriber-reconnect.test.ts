// Waiters listen on one subscriber connection per executor. When that connection drops,
// ioredis resubscribes, and every waiter re-reads its key: messages sent meanwhile are gone.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { FaultyProxy } from '../chaos/tcp-proxy.js';
import { OwnRedisServer } from '../helpers/redis.js';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('a waiter whose subscriber connection is killed', () => {
  let server: OwnRedisServer;
  let admin: Redis;
  before(async () => {
    server = await OwnRedisServer.start();
    admin = new Redis(server.url);
  });
  after(async () => {
    admin.disconnect();
    await server.stop();
  });

  for (const [when, completeAfterKillMs] of [
    ['after it resubscribed', 800],
    ['while it reconnects', 0],
  ] as const) {
    it(`still gets the outcome published ${when}, within its wait bound`, async () => {
      // Prepare: leases far longer than the wait bound, so only pub/sub or a re-read can help.
      const ownerClient = new Redis(server.url);
      const waiterClient = new Redis(server.url);
      const options = { namespace: `reconnect-${completeAfterKillMs}`, leaseMs: 20_000 };
      const owner = new IdempotentExecutor({ redis: ownerClient, ...options });
      const waiter = new IdempotentExecutor({
        redis: waiterClient,
        ...options,
        waitTimeoutMs: 5_000,
      });
      let release!: () => void;
      const gate = new Promise<void>((resolve) => {
        release = resolve;
      });
      const running = owner.run('order', async () => {
        await gate;
        return 'charged';
      });
      await sleep(100);
      const waited = waiter.run('order', async () => 'waiter ran fn');
      await sleep(200);

      // Act: drop every pub/sub connection, then let the owner finish.
      const killed = await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
      await sleep(completeAfterKillMs);
      release();

      // Assess
      assert.ok(Number(killed) >= 1, 'a subscriber connection was killed');
      assert.equal(await running, 'charged');
      assert.equal(await waited, 'charged');
      await owner.close();
      await waiter.close();
      ownerClient.disconnect();
      waiterClient.disconnect();
    });
  }
});

describe('a waiter whose subscriber connection is cut while a partition holds its resubscription', () => {
  let server: OwnRedisServer;
  let admin: Redis;
  let proxy: FaultyProxy;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  before(async () => {
    server = await OwnRedisServer.start();
    admin = new Redis(server.url);
    proxy = await FaultyProxy.start('127.0.0.1', server.port);
    process.on('unhandledRejection', onUnhandled);
  });
  after(async () => {
    process.off('unhandledRejection', onUnhandled);
    await proxy.close();
    admin.disconnect();
    await server.stop();
  });

  it('leaves no unhandled rejection when the SUBSCRIBE after the reconnect times out, and the waiter still gets the outcome once it heals', async () => {
    // Prepare: the waiter reaches Redis through the proxy, with a short command timeout.
    const ownerClient = new Redis(server.url);
    const waiterClient = new Redis(`redis://127.0.0.1:${proxy.port}`);
    const options = { namespace: 'resubscribe-timeout', leaseMs: 20_000 };
    const owner = new IdempotentExecutor({ redis: ownerClient, ...options });
    const waiter = new IdempotentExecutor({
      redis: waiterClient,
      ...options,
      storeTimeoutMs: 300,
      waitTimeoutMs: 8_000,
    });
    let release!: () => void;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const running = owner.run('order', async () => {
      await gate;
      return 'charged';
    });
    await sleep(100);
    const waited = waiter.run('order', async () => 'waiter ran fn');
    await sleep(300);

    // Act: hold every subscriber connection (this one and the one that replaces it), cut the
    // subscriber from the server's side, and let resubscriptions time out for a while.
    proxy.blackholeSome((identity) => identity.subscriber);
    await admin.call('CLIENT', 'KILL', 'TYPE', 'pubsub');
    await sleep(2_500);
    proxy.heal();
    await sleep(300);
    release();

    // Assess
    assert.deepEqual(unhandled, []);
    assert.equal(await running, 'charged');
    assert.equal(await waited, 'charged');
    await owner.close();
    await waiter.close();
    ownerClient.disconnect();
    waiterClient.disconnect();
  });
});
