import { Idempotency, IdempotencyError, IdempotencyErrorCodes } from '@node-idempotency/core';
import { RedisStorageAdapter } from '@node-idempotency/storage-adapter-redis';
import type { Subject, SubjectFactory } from './subject.js';

/**
 * `@node-idempotency/core` with its Redis storage adapter (node-redis 4), set up as its README
 * shows: the key travels in an `Idempotency-Key` header, the default in-progress strategy answers
 * a duplicate of a running request with `REQUEST_IN_PROGRESS` instead of waiting.
 */
export const nodeIdempotencySubject: SubjectFactory = async (redisUrl, namespace) => {
  const storage = new RedisStorageAdapter({ url: redisUrl });
  await storage.connect();
  const idempotency = new Idempotency(storage, { cacheKeyPrefix: namespace });
  return {
    name: '@node-idempotency/core',
    async run(key, fn) {
      const request = { headers: { 'idempotency-key': key }, path: '/bench', method: 'POST' };
      const cached = await idempotency.onRequest(request);
      if (cached !== undefined) {
        if (cached.error !== undefined) throw cached.error;
        return cached.body;
      }
      let value: unknown;
      try {
        value = await fn();
      } catch (error) {
        await idempotency.onResponse(request, { error });
        throw error;
      }
      await idempotency.onResponse(request, { body: value });
      return value;
    },
    isInProgressRejection: (error) =>
      error instanceof IdempotencyError && error.code === IdempotencyErrorCodes.REQUEST_IN_PROGRESS,
    close: () => storage.disconnect(),
  } satisfies Subject;
};
