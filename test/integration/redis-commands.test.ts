// What runs cost in Redis commands, counted on a redis-server this file owns (INFO commandstats
// and MONITOR see every client, so the shared server would count other agents' work too).
// Counts, never timings: a fresh run and a replay are 2 round trips each, same-process
// duplicates none, and a waiter sends nothing however long it waits.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import {
  commandStats,
  deleteNamespace,
  OwnRedisServer,
  REDIS_URL,
  statsDelta,
  uniqueNamespace,
  waitUntil,
} from '../helpers/redis.js';
import { stopAllWorkers } from '../helpers/worker/parent.js';
import { sleep, waitForWaiters } from './support.js';
import { ExecutorProcess } from './workers/executor-process.js';

/**
 * Calls per command between two snapshots, without the INFO of the first snapshot (the second
 * snapshot's own INFO is counted only after it answered).
 */
function commandsBetween(
  earlier: Record<string, number>,
  later: Record<string, number>,
): Record<string, number> {
  const delta = statsDelta(earlier, later);
  if (delta.info === 1) delete delta.info;
  else if (delta.info !== undefined) delta.info -= 1;
  return delta;
}

/**
 * What `action` cost: the commands clients sent (MONITOR, leaving out what scripts ran inside
 * Redis: one client command is one round trip here) and the INFO commandstats delta (which
 * counts the commands scripts ran too).
 */
async function measure<T>(server: OwnRedisServer, admin: Redis, action: () => Promise<T>) {
  const connection = new Redis(server.url);
  const monitor = await connection.monitor();
  const sent: string[] = [];
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source !== 'lua') sent.push(String(args[0]).toLowerCase());
  });
  // MONITOR reports each command once it ran: a PING answered after `action` means every
  // command sent before it has been reported.
  const marker = new Redis(server.url);
  await marker.ping();
  await waitUntil(() => sent.includes('ping'), 5_000, 5);
  sent.length = 0;
  const earlier = await commandStats(admin);
  const value = await action();
  const later = await commandStats(admin);
  await marker.ping();
  await waitUntil(() => sent.filter((command) => command === 'ping').length > 0, 5_000, 5);
  monitor.disconnect();
  connection.disconnect();
  marker.disconnect();
  const roundTrips = sent.filter((command) => command !== 'ping' && command !== 'info');
  return { value, roundTrips, commandStats: commandsBetween(earlier, later) };
}

describe('Redis commands per run', () => {
  let server: OwnRedisServer;
  let admin: Redis;
  let client: Redis;
  let namespace: string;
  let executor: IdempotentExecutor;

  before(async () => {
    server = await OwnRedisServer.start();
    admin = new Redis(server.url);
  });
  after(async () => {
    await admin.quit();
    await server.stop();
  });
  beforeEach(async () => {
    namespace = uniqueNamespace('commands');
    client = new Redis(server.url);
    executor = new IdempotentExecutor({ redis: client, namespace });
    // Load every script once (the first call of each pays EVAL after NOSCRIPT).
    await executor.run('warm-up', async () => 'warm');
    await executor.run('warm-up', async () => 'warm');
  });
  afterEach(async () => {
    await stopAllWorkers();
    await executor.close();
    await client.quit();
    await deleteNamespace(admin, namespace);
  });

  it('costs 2 round trips for a fresh run: claim and complete', async (t) => {
    // Act
    const fresh = await measure(server, admin, () =>
      executor.run('fresh', async () => ({ receipt: 'r-1' })),
    );

    // Assess
    t.diagnostic(`fresh run: sent ${JSON.stringify(fresh.roundTrips)}`);
    t.diagnostic(`fresh run: INFO commandstats delta ${JSON.stringify(fresh.commandStats)}`);
    assert.deepEqual(fresh.value, { receipt: 'r-1' });
    assert.equal(fresh.roundTrips.length, 2);
    assert.equal(fresh.commandStats.eval, undefined, 'scripts are called by EVALSHA once loaded');
  });

  it('costs 1 round trip for a replay: the claim answers with the record', async (t) => {
    // Prepare
    await executor.run('replayed', async () => ({ receipt: 'r-2' }));

    // Act
    const replay = await measure(server, admin, () =>
      executor.run('replayed', async () => ({ receipt: 'ran again' })),
    );

    // Assess
    t.diagnostic(`replay: sent ${JSON.stringify(replay.roundTrips)}`);
    t.diagnostic(`replay: INFO commandstats delta ${JSON.stringify(replay.commandStats)}`);
    assert.deepEqual(replay.value, { receipt: 'r-2' });
    assert.equal(replay.roundTrips.length, 1);
    assert.equal(replay.commandStats.eval, undefined, 'scripts are called by EVALSHA once loaded');
  });

  it('adds no round trip for concurrent duplicates in the same process', async (t) => {
    // Prepare
    let runs = 0;
    const fn = async () => {
      runs++;
      await sleep(200);
      return 'shared';
    };

    // Act
    const duplicates = await measure(server, admin, () =>
      Promise.all(Array.from({ length: 5 }, () => executor.run('same', fn))),
    );

    // Assess
    t.diagnostic(`5 same-process calls: sent ${JSON.stringify(duplicates.roundTrips)}`);
    assert.deepEqual(duplicates.value, Array(5).fill('shared'));
    assert.equal(runs, 1);
    assert.equal(duplicates.roundTrips.length, 2);
  });

  it('lets a waiter in another process wait without sending commands, then hands it the value', async (t) => {
    // Prepare: the winner holds a long lease so it does not renew inside the measured window.
    const config = {
      redisUrl: server.url,
      counterUrl: REDIS_URL,
      namespace,
      leaseMs: 30_000,
    };
    const [winner, waiter] = await ExecutorProcess.startMany(2, config);
    assert.ok(winner && waiter);
    const receipt = { orderId: 'o-9', status: 'paid' };
    const winning = winner.run({
      key: 'slow',
      fn: { gate: 'finish', result: { kind: 'value', value: receipt } },
    });
    await winner.event('started', winning);
    const waiting = waiter.run({ key: 'slow', fn: { result: { kind: 'value', value: 'ran' } } });
    await waitForWaiters(admin, namespace, 1);
    await sleep(300); // the waiter's read after subscribing

    // Act
    const earlier = await commandStats(admin);
    await sleep(2_000);
    const later = await commandStats(admin);
    winner.open('finish');
    const [waited] = await waiter.results(waiting);
    const [won] = await winner.results(winning);

    // Assess
    const delta = commandsBetween(earlier, later);
    t.diagnostic(`2 s of waiting, INFO commandstats delta: ${JSON.stringify(delta)}`);
    assert.deepEqual(delta, {});
    assert.deepEqual(won, { ...won, ok: true, value: receipt });
    assert.deepEqual(waited, { ...waited, ok: true, value: receipt });
    assert.equal(waiter.eventsOf('started', waiting).length, 0);
  });
});
