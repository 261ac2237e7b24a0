// The command against a Redis Cluster of its own: found out by itself, SCAN on every master;
// watch finds running executions by rescans and listens on their shards' channels.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Cluster } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { LocalCluster } from '../cluster/support/local-cluster.js';
import { exited, Lines, parseJson, runCli, startCli } from './support.js';

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

  it('watch --json finds a running execution by its rescans, SSUBSCRIBEs to its shard and reports its renewals and completion; SIGINT exits 0', async () => {
    // Prepare: the watch is up (its first walk done) before the execution starts.
    const port = cluster.startupNodes[0]?.port;
    const child = startCli([
      'watch',
      '--json',
      '--namespace',
      namespace,
      '--redis',
      `redis://127.0.0.1:${port}`,
    ]);
    const stdout = new Lines(child.stdout as NodeJS.ReadableStream, child);
    const stderr = new Lines(child.stderr as NodeJS.ReadableStream, child);
    try {
      await stderr.waitFor((line) => line.startsWith('Watching namespace'));

      // Act: fn runs 1.5 s under a 300 ms lease renewed about every 100 ms, longer than the
      // default 1 s between two walks, so a walk finds its lease running.
      const value = await executor.run(
        'slow-order',
        async () => {
          await new Promise((resolve) => setTimeout(resolve, 1_500));
          return { receipt: 'r-slow' };
        },
        { leaseMs: 300 },
      );
      const completedLine = await stdout.waitFor((text) => text.includes('"completed"'));
      child.kill('SIGINT');
      const code = await exited(child);

      // Assess
      assert.deepEqual(value, { receipt: 'r-slow' });
      const events = stdout.lines.map(
        (text) => JSON.parse(text) as { event: string; key?: string; [name: string]: unknown },
      );
      const completed = JSON.parse(completedLine) as Record<string, unknown>;
      assert.equal(completed.key, 'slow-order');
      assert.equal(completed.ok, true);
      assert.deepEqual(completed.value, { receipt: 'r-slow' });
      assert.ok((completed.durationMs as number) >= 1_500);
      assert.equal(events.filter((event) => event.event === 'completed').length, 1);
      const renewals = events.filter((event) => event.event === 'renewed');
      assert.ok(renewals.length >= 1, stdout.lines.join('\n'));
      assert.deepEqual(renewals[0], { ...renewals[0], key: 'slow-order', leaseMs: 300 });
      assert.equal(code, 0, stderr.lines.join('\n'));
      assert.match(
        stderr.lines.join('\n'),
        /Stopped: 1 completed, \d+ renewed, 0 released, 0 takeovers/,
      );
    } finally {
      child.kill('SIGKILL');
    }
  });
});
