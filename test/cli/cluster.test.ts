// The command against a Redis Cluster of its own: found out by itself, SCAN on every master.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { LocalCluster } from '../cluster/support/local-cluster.js';
import { parseJson, runCli } from './support.js';

describe('on a Redis Cluster', () => {
  let cluster: LocalCluster;
  let client: Cluster;
  let executor: IdempotentExecutor;
  const namespace = 'cli-cluster';
  const keys = Array.from({ length: 12 }, (_, i) => `order-${i}`);

  before(async () => {
    cluster = await LocalCluster.start();
    client = cluster.client();
    executor = new IdempotentExecutor({ redis: client, namespace });
    for (const key of keys) await executor.run(key, () => `value of ${key}`);
  });

  after(async () => {
    await executor.close();
    client.disconnect();
    await cluster.stop();
  });

  const cli = (...args: string[]) => {
    const port = cluster.startupNodes[0]?.port;
    return runCli([...args, '--namespace', namespace, '--redis', `redis://127.0.0.1:${port}`]);
  };

  it('lists the keys of every master, connecting as a cluster client by itself', async () => {
    // Act
    const result = await cli('list', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    const listed = (parseJson(result).keys as { key: string }[]).map(({ key }) => key);
    assert.deepEqual(listed, [...keys].sort());
  });

  it('stats counts the records of every master', async () => {
    // Act
    const result = await cli('stats', '--json');

    // Assess
    assert.equal(result.code, 0, result.stderr);
    assert.equal((parseJson(result).keys as { completed: number }).completed, keys.length);
  });

  it('inspect and forget reach the key on whichever master serves its slot', async () => {
    // Act
    const inspected = await cli('inspect', 'order-7', '--json');
    const forgotten = await cli('forget', 'order-7', '--json', '--cluster');

    // Assess
    assert.equal(parseJson(inspected).value, 'value of order-7');
    assert.equal(parseJson(forgotten).result, 'deleted');
    assert.equal((await executor.inspect('order-7')).state, 'absent');
  });

  it('watch says it cannot pattern-subscribe to sharded channels and exits 1', async () => {
    // Act
    const result = await cli('watch');

    // Assess
    assert.equal(result.code, 1);
    assert.match(result.stderr, /watch is not available on Redis Cluster/);
  });
});
