import {
  IdempotencyAlreadyInProgressError,
  IdempotencyConfig,
  makeIdempotent,
} from '@aws-lambda-powertools/idempotency';
import { CachePersistenceLayer } from '@aws-lambda-powertools/idempotency/cache';
import { createClient } from '@redis/client';
import type { Subject, SubjectFactory } from './subject.js';

interface Call {
  readonly key: string;
}

/** The one part of a Lambda context the idempotency utility reads. */
type LambdaContext = Parameters<IdempotencyConfig['registerLambdaContext']>[0];

/** A Lambda invocation's time limit, as a typical API function has it. */
const INVOCATION_MS = 30_000;

/**
 * `@aws-lambda-powertools/idempotency`: `makeIdempotent` over its cache persistence layer with a
 * connected `@redis/client`, as its docs show; the idempotency key is the event's `key` field
 * (`eventKeyJmesPath`). A duplicate of a running call is answered with
 * `IdempotencyAlreadyInProgressError` (it does not wait).
 *
 * Its docs ask wrapped functions to register the Lambda context, from which the in-progress
 * record gets its expiry; the bench runs outside Lambda, so it registers a context with 30 s left.
 * Without one, the in-progress record has no expiry, a duplicate takes it for an orphan and runs
 * fn again (seen here: 2 executions for one key among 10 concurrent callers).
 */
export const powertoolsSubject: SubjectFactory = async (redisUrl, namespace) => {
  const client = await createClient({ url: redisUrl }).connect();
  const persistenceStore = new CachePersistenceLayer({ client });
  const config = new IdempotencyConfig({ eventKeyJmesPath: 'key' });
  config.registerLambdaContext({
    getRemainingTimeInMillis: () => INVOCATION_MS,
  } as Partial<LambdaContext> as LambdaContext);
  const idempotent = makeIdempotent(
    (_call: Call, fn: () => Promise<unknown>): Promise<unknown> => fn(),
    {
      persistenceStore,
      keyPrefix: namespace,
      config,
    },
  );
  return {
    name: '@aws-lambda-powertools/idempotency',
    run: (key, fn) => idempotent({ key }, fn),
    isInProgressRejection: (error) => error instanceof IdempotencyAlreadyInProgressError,
    async close() {
      await client.quit();
    },
  } satisfies Subject;
};
