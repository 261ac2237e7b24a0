import { Redis } from 'ioredis';
import type { Subject, SubjectFactory } from '../subjects/subject.js';

/** What the tutorial pattern does with a duplicate that finds the lock taken. */
export type DuplicateAnswer = 'conflict' | 'poll';

/** The tutorial's answer to a duplicate of a running request (an HTTP 409 in the tutorials). */
export class ConflictError extends Error {
  override readonly name = 'ConflictError';
}

const LOCK_MS = 30_000;
const RESULT_MS = 86_400_000;
const POLL_MS = 50;
const POLL_LIMIT_MS = 10_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The pattern the popular tutorials teach, as a baseline: `GET` the stored result; on a miss take a
 * lock with `SET lock NX PX`; run; `SET` the result as JSON; `DEL` the lock. A duplicate that finds
 * the lock taken either gets a 409 (`conflict`) or polls the result every 50 ms (`poll`).
 * It is measured as taught, with its known gap: a duplicate that misses the result just before
 * the winner stores it and takes the lock just after the winner deletes it runs fn again.
 */
export function tutorialBaseline(answer: DuplicateAnswer): SubjectFactory {
  return async (redisUrl, namespace) => {
    const client = new Redis(redisUrl);
    const resultKey = (key: string) => `${namespace}:result:${key}`;
    const lockKey = (key: string) => `${namespace}:lock:${key}`;

    async function pollResult(key: string): Promise<unknown> {
      const deadline = Date.now() + POLL_LIMIT_MS;
      while (Date.now() < deadline) {
        await sleep(POLL_MS);
        const stored = await client.get(resultKey(key));
        if (stored !== null) return JSON.parse(stored);
      }
      throw new ConflictError(`still running after ${POLL_LIMIT_MS} ms`);
    }

    return {
      name: `tutorial pattern (${answer === 'conflict' ? '409' : 'poll'})`,
      async run(key, fn) {
        const stored = await client.get(resultKey(key));
        if (stored !== null) return JSON.parse(stored);
        const locked = await client.set(lockKey(key), '1', 'PX', LOCK_MS, 'NX');
        if (locked === null) {
          if (answer === 'conflict') throw new ConflictError('a request with this key is running');
          return pollResult(key);
        }
        try {
          const value = await fn();
          await client.set(resultKey(key), JSON.stringify(value), 'PX', RESULT_MS);
          return value;
        } finally {
          await client.del(lockKey(key));
        }
      },
      isInProgressRejection: (error) => error instanceof ConflictError,
      async close() {
        client.disconnect();
      },
    } satisfies Subject;
  };
}
