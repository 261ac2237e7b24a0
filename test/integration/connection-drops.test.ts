// The executor's connections are killed over and over (CLIENT KILL) while unique keys run. ioredis
// sends unanswered commands again after reconnecting, so a claim or a completion can run twice:
// the first copy does the work, its reply is lost, and the second copy finds the first's effect.
// Neither may be mistaken for someone else's: no caller is told its lease was lost, and none waits
// on its own lease. (test/cluster/connection-drops.test.ts: the same on a cluster.)
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import {
  assertNoCallerMistookItsOwnCommand,
  DROPPING,
  DROPS_LEASE_MS,
  DROPS_WAIT_TIMEOUT_MS,
  keepKilling,
  runUniqueKeys,
} from '../helpers/connection-drops.js';
import { OwnRedisServer } from '../helpers/redis.js';

const RUNS = 600;

describe('when the executor connections keep dropping', () => {
  let server: OwnRedisServer;
  let admin: Redis;
  let client: Redis;
  let executor: IdempotentExecutor;

  beforeEach(async () => {
    server = await OwnRedisServer.start();
    admin = new Redis(server.url);
    // The executor's own connections are duplicates of this client, so they carry its name.
    client = new Redis(server.url, { connectionName: DROPPING });
    client.on('error', () => {});
    executor = new IdempotentExecutor({
      redis: client,
      namespace: 'drops',
      leaseMs: DROPS_LEASE_MS,
      waitTimeoutMs: DROPS_WAIT_TIMEOUT_MS,
    });
  });
  afterEach(async () => {
    await executor.close();
    client.disconnect();
    admin.disconnect();
    await server.stop();
  });

  it('never tells a caller its lease was lost when its outcome was stored, nor makes it wait on its own claim', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const killer = keepKilling([admin]);

    // Act
    const outcomes = await runUniqueKeys(executor, RUNS, 32);
    const kills = await killer.stop();

    // Assert
    assertNoCallerMistookItsOwnCommand(outcomes, kills, RUNS);
  });
});
