// Namespaces and keys are escaped into Redis keys: distinct (namespace, key) pairs never share a
// record, and a key's record, fencing counter and channel share one Redis Cluster hash slot.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor } from '../../src/index.js';
import { clusterSlot, crc16Xmodem } from '../helpers/key-slot.js';
import { connect, deleteNamespace, OwnRedisServer, uniqueNamespace } from '../helpers/redis.js';
import { channelsIn, gate, keysUnder, waitForWaiters } from './support.js';

describe('the CRC16 slot helper of these tests', () => {
  it('matches the checksum and slots Redis documents', () => {
    // Assess
    assert.equal(crc16Xmodem(Buffer.from('123456789')), 0x31c3);
    assert.equal(clusterSlot('somekey'), 11_058);
    assert.equal(clusterSlot('foo{hash_tag}'), 2_515);
    assert.equal(clusterSlot('bar{hash_tag}'), 2_515);
    assert.equal(clusterSlot('foo{}{bar}'), crc16Xmodem(Buffer.from('foo{}{bar}')) % 16_384);
    assert.equal(clusterSlot('foo{{bar}}zap'), clusterSlot('{bar'));
    assert.equal(clusterSlot('foo{bar}{zap}'), clusterSlot('bar'));
  });

  it('agrees with CLUSTER KEYSLOT of a cluster-enabled redis-server on 300 random keys', async () => {
    // Prepare
    const configFile = join(tmpdir(), `idem-keyslot-${randomBytes(6).toString('hex')}.conf`);
    const server = await OwnRedisServer.start([
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      configFile,
    ]);
    const admin = new Redis(server.url);
    const alphabet = ['a', 'b', '{', '}', '%', ':', 'é', '7'];
    const keys = Array.from({ length: 300 }, () =>
      Array.from(
        randomBytes(1 + ((randomBytes(1)[0] as number) % 12)),
        (byte) => alphabet[byte % 8],
      ).join(''),
    );

    try {
      // Act
      const fromRedis = await Promise.all(
        keys.map((key) => admin.call('CLUSTER', 'KEYSLOT', key) as Promise<number>),
      );

      // Assess
      assert.deepEqual(
        keys.map((key) => clusterSlot(key)),
        fromRedis,
      );
    } finally {
      admin.disconnect();
      await server.stop();
      rmSync(configFile, { force: true });
    }
  });
});

describe('namespace and key escaping', () => {
  let redis: Redis;
  let base: string;
  let executors: IdempotentExecutor[];

  const executor = (namespace: string) => {
    const created = new IdempotentExecutor({ redis, namespace, leaseMs: 1_000 });
    executors.push(created);
    return created;
  };

  beforeEach(() => {
    redis = connect();
    base = uniqueNamespace('escaping');
    executors = [];
  });
  afterEach(async () => {
    await Promise.all(executors.map((created) => created.close()));
    await deleteNamespace(redis, base);
    await redis.quit();
  });

  /** Pairs that would collide if namespace and key were joined without escaping. */
  const colliding = (): [string, string][] => [
    [`${base}:a:b`, 'c'],
    [`${base}:a`, 'b:c'],
    [`${base}:a:{b}`, 'c'],
    [`${base}:a`, 'b}:{c'],
    [`${base}:n`, '{x}'],
    [`${base}:n`, '%7Bx%7D'],
    [`${base}:n`, '%257Bx%257D'],
    [`${base}:n`, '{x'],
    [`${base}:n`, 'x}'],
    [`${base}:n`, '}x{'],
    [`${base}:n`, '%'],
    [`${base}:n`, '%25'],
    [`${base}:n`, '{}'],
    [`${base}:n%`, '7B'],
    [`${base}:n`, '%7B'],
  ];

  it('keeps distinct (namespace, key) pairs in distinct records: ("a:b","c") vs ("a","b:c"), and keys with {, } and %', async () => {
    // Prepare
    const pairs = colliding();
    const label = ([namespace, key]: [string, string]) =>
      `${namespace.slice(base.length)} | ${key}`;
    const runs: string[] = [];

    // Act
    const first = await Promise.all(
      pairs.map((pair) =>
        executor(pair[0]).run(pair[1], async () => {
          runs.push(label(pair));
          return label(pair);
        }),
      ),
    );
    const replayed = await Promise.all(
      pairs.map((pair) => executor(pair[0]).run(pair[1], async () => 'ran twice')),
    );
    const records = await keysUnder(redis, base);

    // Assess
    assert.deepEqual(first, pairs.map(label));
    assert.deepEqual(replayed, pairs.map(label));
    assert.equal(runs.length, pairs.length);
    assert.equal(records.length, pairs.length);
  });

  const slotCases: [string, (base: string) => string, string][] = [
    ['a plain key', (prefix) => prefix, 'order-1'],
    ['a key with braces', (prefix) => prefix, 'a{b}c'],
    ['an empty pair of braces', (prefix) => prefix, '{}'],
    ['reversed braces', (prefix) => prefix, '}{'],
    ['percent signs and non-ASCII', (prefix) => prefix, 'ключ:%7B:%'],
    ['a namespace with braces', (prefix) => `${prefix}:{tenant}`, 'k}'],
  ];

  for (const [description, namespaceOf, key] of slotCases) {
    it(`keeps the record, fencing counter and channel of ${description} in one cluster hash slot`, async () => {
      // Prepare
      const namespace = namespaceOf(base);
      const release = gate();
      const started = gate();
      const owner = executor(namespace).run(key, async (ctx) => {
        await ctx.fencingToken();
        started.open();
        await release.promise;
        return 'done';
      });
      await started.promise;
      const waiter = executor(namespace).run(key, async () => 'ran twice');
      await waitForWaiters(redis, base, 1);

      // Act
      const channels = await channelsIn(redis, base);
      release.open();
      await Promise.all([owner, waiter]);
      const keys = await keysUnder(redis, base);

      // Assess
      assert.equal(channels.length, 1, `channels: ${JSON.stringify(channels)}`);
      assert.equal(keys.length, 2, `record and fence keys: ${JSON.stringify(keys)}`);
      const names = [...keys, ...channels];
      assert.equal(new Set(names).size, 3);
      const slots = new Set(names.map((name) => clusterSlot(name)));
      assert.equal(slots.size, 1, `slots of ${JSON.stringify(names)}: ${[...slots].join(', ')}`);
    });
  }
});
