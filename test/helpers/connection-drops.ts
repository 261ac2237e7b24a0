// Shared by the single-server and cluster tests of commands re-sent after a connection drop.
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import { type IdempotentExecutor, isIdempotencyError } from '../../src/index.js';

/** Longer than the tests take: no lease expires, so no caller has any reason to wait... */
export const DROPS_LEASE_MS = 120_000;
/** ...and one that waits anyway (on its own lease) fails with IDEMPOTENCY_WAIT_TIMEOUT. */
export const DROPS_WAIT_TIMEOUT_MS = 5_000;
/** The connection name the executor's connections inherit from the client under test. */
export const DROPPING = 'dropping';

/**
 * Kills every connection named {@link DROPPING} on each of `servers` every few ms until
 * `stop()`, which resolves with the number of kills.
 */
export function keepKilling(servers: readonly Redis[]): { stop(): Promise<number> } {
  let running = true;
  let kills = 0;
  const loop = (async () => {
    while (running) {
      for (const admin of servers) {
        const list = (await admin.call('CLIENT', 'LIST')) as string;
        for (const line of list.split('\n')) {
          const id = line.includes(` name=${DROPPING} `) ? /^id=(\d+)/.exec(line)?.[1] : undefined;
          if (id === undefined) continue;
          kills += Number(await admin.call('CLIENT', 'KILL', 'ID', id).catch(() => 0));
        }
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

/** Runs `runs` unique keys, `lanes` at a time; returns how many calls ended with each outcome. */
export async function runUniqueKeys(
  executor: IdempotentExecutor,
  runs: number,
  lanes: number,
): Promise<Record<string, number>> {
  const outcomes: Record<string, number> = {};
  let next = 0;
  await Promise.all(
    Array.from({ length: lanes }, async () => {
      while (next < runs) {
        const key = `k${next++}`;
        let outcome: string;
        try {
          await executor.run(key, async () => ({ key }));
          outcome = 'value';
        } catch (error) {
          outcome = isIdempotencyError(error) ? error.code : String(error);
        }
        outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
      }
    }),
  );
  return outcomes;
}

/**
 * Asserts what a storm of {@link runUniqueKeys} under {@link keepKilling} must end with: the
 * connections were really killed; every call settled with its value, or was refused while Redis
 * was unreachable; none was told LEASE_LOST, none timed out waiting (on its own lease: there is
 * no other).
 */
export function assertNoCallerMistookItsOwnCommand(
  outcomes: Record<string, number>,
  kills: number,
  runs: number,
): void {
  assert.ok(kills > 10, `the connections were killed (${kills} times)`);
  const { value = 0, IDEMPOTENCY_STORE_UNAVAILABLE: unavailable = 0, ...others } = outcomes;
  assert.deepEqual(others, {}, `unexpected outcomes: ${JSON.stringify(others)}`);
  assert.equal(value + unavailable, runs);
  assert.ok(value > 0);
}
