// On a 3-master cluster, the executor's connections to every master are killed over and over
// while unique keys run: a claim or completion that ioredis sends again after reconnecting is
// recognised as the caller's own, as on one server (test/integration/connection-drops.test.ts).
import { after, before, describe, it } from 'node:test';
import { Cluster, type Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import {
  assertNoCallerMistookItsOwnCommand,
  DROPPING,
  DROPS_LEASE_MS,
  DROPS_WAIT_TIMEOUT_MS,
  keepKilling,
  runUniqueKeys,
} from '../helpers/connection-drops.js';
import { uniqueNamespace } from '../helpers/redis.js';
import { LocalCluster } from './support/local-cluster.js';

const RUNS = 600;

describe('when the executor connections to the cluster keep dropping', () => {
  let cluster: LocalCluster;
  let admins: Redis[];
  let client: Cluster;
  let executor: IdempotentExecutor;

  before(async () => {
    cluster = await LocalCluster.start({ masters: 3 });
    admins = cluster.nodes.map((node) => cluster.admin(node.port));
    // The executor's connections are duplicates of this client, so they carry its name.
    client = new Cluster(cluster.startupNodes, { redisOptions: { connectionName: DROPPING } });
    client.on('error', () => {});
    executor = new IdempotentExecutor({
      redis: client,
      namespace: uniqueNamespace('cluster-drops'),
      leaseMs: DROPS_LEASE_MS,
      waitTimeoutMs: DROPS_WAIT_TIMEOUT_MS,
    });
    await executor.run('warm-up', async () => 'ok');
  });
  after(async () => {
    await executor?.close();
    client?.disconnect();
    for (const admin of admins ?? []) admin.disconnect();
    await cluster?.stop();
  });

  it('never tells a caller its lease was lost when its outcome was stored, nor makes it wait on its own claim', {
    timeout: 90_000,
  }, async () => {
    // Prepare
    const killer = keepKilling(admins);

    // Act
    const outcomes = await runUniqueKeys(executor, RUNS, 32);
    const kills = await killer.stop();

    // Assert
    assertNoCallerMistookItsOwnCommand(outcomes, kills, RUNS);
  });
});
