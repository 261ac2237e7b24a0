// `idempotent-executor watch`: a live view of what the namespace's channels carry, run as a real
// process against the shared Redis while a real executor works.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { connect, deleteNamespace, REDIS_URL, uniqueNamespace } from '../helpers/redis.js';
import { exited, Lines, startCli } from './support.js';

interface WatchLine {
  event: string;
  key?: string;
  ok?: boolean;
  value?: unknown;
  error?: unknown;
  leaseMs?: number;
  durationMs?: number;
}

describe('watch', () => {
  let redis: Redis;
  const namespaces: string[] = [];

  before(() => {
    redis = connect();
  });

  after(async () => {
    for (const namespace of namespaces) await deleteNamespace(redis, namespace);
    redis.disconnect();
  });

  /** Starts a watch of a fresh namespace and waits until it is subscribed. */
  async function startWatch(...extra: string[]) {
    const namespace = uniqueNamespace('cli-watch');
    namespaces.push(namespace);
    const child = startCli(['watch', '--namespace', namespace, '--redis', REDIS_URL, ...extra]);
    const stdout = new Lines(child.stdout as NodeJS.ReadableStream, child);
    const stderr = new Lines(child.stderr as NodeJS.ReadableStream, child);
    await stderr.waitFor((line) => line.startsWith('Watching namespace'));
    return { namespace, child, stdout, stderr };
  }

  it('--json reports a completion made while it runs, then stops on SIGINT with exit 0', async () => {
    // Prepare
    const { namespace, child, stdout, stderr } = await startWatch('--json');
    const executor = new IdempotentExecutor({ redis, namespace });
    try {
      // Act
      await executor.run('order-1', () => ({ receipt: 'r-1' }));
      const line = await stdout.waitFor((text) => text.includes('"completed"'));
      child.kill('SIGINT');

      // Assess
      const event = JSON.parse(line) as WatchLine;
      assert.equal(event.event, 'completed');
      assert.equal(event.key, 'order-1');
      assert.equal(event.ok, true);
      assert.deepEqual(event.value, { receipt: 'r-1' });
      assert.equal(await exited(child), 0);
      assert.match(
        stderr.lines.join('\n'),
        /Stopped: 1 completed, 0 renewed, 0 released, 0 takeovers/,
      );
    } finally {
      child.kill('SIGKILL');
      await executor.close();
    }
  });

  it('reports lease renewals while fn runs, and a cached error as a completion that failed', async () => {
    // Prepare
    const { namespace, child, stdout } = await startWatch('--json');
    const executor = new IdempotentExecutor({ redis, namespace });
    try {
      // Act: a 300 ms lease is renewed every 100 ms or so while fn sleeps 500 ms.
      await executor
        .run(
          'slow',
          async () => {
            await new Promise((resolve) => setTimeout(resolve, 500));
            throw new RangeError('too slow');
          },
          { leaseMs: 300 },
        )
        .catch(() => undefined);
      const completed = await stdout.waitFor((text) => text.includes('"completed"'));

      // Assess
      const renewals = stdout.lines
        .map((text) => JSON.parse(text) as WatchLine)
        .filter((event) => event.event === 'renewed');
      assert.ok(renewals.length >= 1);
      assert.deepEqual(renewals[0], { ...renewals[0], key: 'slow', leaseMs: 300 });
      const event = JSON.parse(completed) as WatchLine;
      assert.equal(event.ok, false);
      assert.deepEqual(event.error, { $error: { name: 'RangeError', message: 'too slow' } });
      assert.ok((event.durationMs ?? 0) >= 500);
    } finally {
      child.kill('SIGKILL');
      await executor.close();
    }
  });

  it('reports a release: an error that is not cached frees the key', async () => {
    // Prepare
    const { namespace, child, stdout } = await startWatch('--json');
    const executor = new IdempotentExecutor({ redis, namespace, shouldCacheError: () => false });
    try {
      // Act
      await executor
        .run('flaky', () => {
          throw new Error('timeout upstream');
        })
        .catch(() => undefined);
      const line = await stdout.waitFor((text) => text.includes('"released"'));

      // Assess
      const event = JSON.parse(line) as WatchLine;
      assert.equal(event.key, 'flaky');
      assert.deepEqual(event.error, { $error: { name: 'Error', message: 'timeout upstream' } });
    } finally {
      child.kill('SIGKILL');
      await executor.close();
    }
  });

  it('reports a takeover: a lease seen renewed, then a record of an execution started after it', async () => {
    // Prepare: an owner whose lease is renewed, then stops renewing (its executor is torn down
    // without completing), so a second caller takes the key over once the lease runs out.
    const { namespace, child, stdout } = await startWatch('--json');
    const owner = new IdempotentExecutor({ redis, namespace });
    const successor = new IdempotentExecutor({ redis, namespace });
    let release = () => {};
    const stalled = owner.run(
      'stuck',
      () =>
        new Promise<void>((resolve) => {
          release = resolve;
        }),
      { leaseMs: 300 },
    );
    try {
      await stdout.waitFor((text) => text.includes('"renewed"'));
      // The owner's renewals stop: its lease key is rewritten to a lease that simply expires.
      const token = (await redis.get(`${namespace}:{stuck}`)) as string;
      await redis.set(
        `${namespace}:{stuck}`,
        token.replace(/^./, token[0] === 'a' ? 'b' : 'a'),
        'PX',
        300,
      );

      // Act
      await successor.run('stuck', () => 'taken over', { leaseMs: 5_000 });
      await stdout.waitFor((text) => text.includes('"completed"'));

      // Assess
      const events = stdout.lines.map((text) => (JSON.parse(text) as WatchLine).event);
      assert.ok(events.includes('takeover'), events.join(','));
      assert.ok(events.indexOf('takeover') < events.lastIndexOf('completed'));
    } finally {
      release();
      await stalled.catch(() => undefined);
      child.kill('SIGKILL');
      await owner.close();
      await successor.close();
    }
  });

  it('prints plain name=value lines when its output is not a terminal', async () => {
    // Prepare
    const { namespace, child, stdout } = await startWatch();
    const executor = new IdempotentExecutor({ redis, namespace });
    try {
      // Act
      await executor.run('order 2', () => 42);
      const line = await stdout.waitFor((text) => text.includes('event=completed'));
      child.kill('SIGINT');

      // Assess
      assert.match(line, /^time=\S+Z event=completed key="order 2" ok=true durationMs=\d+$/);
      assert.ok(!line.includes('\x1b['), 'no colour codes');
      assert.equal(await exited(child), 0);
    } finally {
      child.kill('SIGKILL');
      await executor.close();
    }
  });
});
