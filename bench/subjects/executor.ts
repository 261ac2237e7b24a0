import { IdempotentExecutor, isIdempotencyError } from 'idempotent-executor';
import { Redis } from 'ioredis';
import type { Subject, SubjectFactory } from './subject.js';

/** The executor as users set it up: handed a default-configured ioredis client. */
export const executorSubject: SubjectFactory = async (redisUrl, namespace) => {
  const client = new Redis(redisUrl);
  const executor = new IdempotentExecutor({ redis: client, namespace });
  return {
    name: 'idempotent-executor',
    run: (key, fn) => executor.run(key, fn),
    isInProgressRejection: (error) =>
      isIdempotencyError(error) && error.code === 'IDEMPOTENCY_IN_PROGRESS',
    async close() {
      await executor.close();
      client.disconnect();
    },
  } satisfies Subject;
};
