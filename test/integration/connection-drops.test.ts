// The executor's connections are killed over and over (CLIENT KILL) while unique keys run. ioredis
// sends unanswered commands again after reconnecting, so a claim or a completion can run twice:
// the first copy does the work, its reply is lost, and the second copy finds the first's effect.
// Neither may be mistaken for someone else's: no caller is told its lease was lost, and none waits
// on its own lease.
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { IdempotentExecutor, isIdempotencyError } from '../../src/index.js';
import { OwnRedisServer } from '../helpers/redis.js';
import { sleep } from './support.js';

/** Longer than the test takes: no lease expires, so no caller has any reason to wait... */
const LEASE_MS = 120_000;
/** ...and one that waits anyway (on its own lease) fails with IDEMPOTENCY_WAIT_TIMEOUT. */
const WAIT_TIMEOUT_MS = 5_000;
const LANES = 32;
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
    client = new Redis(server.url, { connectionName: 'dropping' });
    client.on('error', () => {});
    executor = new IdempotentExecutor({
      redis: client,
      namespace: 'drops',
      leaseMs: LEASE_MS,
      waitTimeoutMs: WAIT_TIMEOUT_MS,
    });
  });
  afterEach(async () => {
    await executor.close();
    client.disconnect();
    admin.disconnect();
    await server.stop();
  });

  /** Kills every connection named `dropping` every few ms until `stop()`; returns the kills. */
  function keepKilling(): { stop(): Promise<number> } {
    let running = true;
    let kills = 0;
    const loop = (async () => {
      while (running) {
        const list = (await admin.call('CLIENT', 'LIST')) as string;
        for (const line of list.split('\n')) {
          const id = / name=dropping /.test(line) ? /^id=(\d+)/.exec(line)?.[1] : undefined;
          if (id === undefined) continue;
          kills += Number(await admin.call('CLIENT', 'KILL', 'ID', id).catch(() => 0));
        }
        await sleep(3);
      }
    })();
    return {
      async stop() {
        running = false;
        await loop;
        return kills;
      },
    };
  }

  it('never tells a caller its lease was lost when its outcome was stored, nor makes it wait on its own claim', {
    timeout: 60_000,
  }, async () => {
    // Prepare
    const killer = keepKilling();
    const outcomes = new Map<string, number>();
    let next = 0;

    // Act
    await Promise.all(
      Array.from({ length: LANES }, async () => {
        while (next < RUNS) {
          const key = `k${next++}`;
          let outcome: string;
          try {
            await executor.run(key, async () => ({ key }));
            outcome = 'value';
          } catch (error) {
            outcome = isIdempotencyError(error) ? error.code : String(error);
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        }
      }),
    );
    const kills = await killer.stop();

    // Assert: every call settled with its value, or was refused while Redis was unreachable;
    // none was told LEASE_LOST, none timed out waiting (on its own lease: there is no other).
    assert.ok(kills > 10, `the connections were killed (${kills} times)`);
    const {
      value = 0,
      IDEMPOTENCY_STORE_UNAVAILABLE: unavailable = 0,
      ...others
    } = Object.fromEntries(outcomes);
    assert.deepEqual(others, {}, `unexpected outcomes: ${JSON.stringify(others)}`);
    assert.equal(value + unavailable, RUNS);
    assert.ok(value > 0);
  });
});
