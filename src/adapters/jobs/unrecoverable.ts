import { ErrorCode, type IdempotencyError, InvalidKeyError, MAX_KEY_LENGTH } from '../../index.js';
import { assertId, scopedKey } from '../edge/index.js';

/** Marks the errors of a job or message that no delivery can fix; survives two package copies. */
const UNRECOVERABLE = Symbol.for('idempotent-executor.jobs.unrecoverable');

/**
 * A job's or message's key is missing or invalid: every delivery of it would fail the same way.
 * Still an `InvalidKeyError` (`IDEMPOTENCY_INVALID_KEY`), with the code at the start of its
 * message so that it shows in BullMQ's `failedReason`, and named `UnrecoverableError`: BullMQ fails
 * a job whose error has that name at once, whatever attempts it has left (`Job.shouldRetryJob`
 * checks `err.name` beside `instanceof`), so the adapter still needs no import of `bullmq`.
 */
class UnrecoverableKeyError extends InvalidKeyError {
  constructor(message: string) {
    super(`${ErrorCode.INVALID_KEY}: ${message}`);
    // The class field of InvalidKeyError has already set `name`; BullMQ looks for this one.
    Object.defineProperty(this, 'name', { value: 'UnrecoverableError' });
  }
}

// On the prototype, not enumerable: neither logged nor copied with an instance's own properties.
Object.defineProperty(UnrecoverableKeyError.prototype, UNRECOVERABLE, { value: true });

/**
 * Whether `error` says that the job or message can never succeed, so that retrying or requeueing
 * it is pointless: its id or key is missing, empty, not a string or not well-formed Unicode
 * (`IDEMPOTENCY_INVALID_KEY`). The work did not run. Reject such a message without requeueing it
 * (`channel.nack(message, false, false)`: RabbitMQ dead-letters it). The BullMQ processor needs no
 * check: it already fails such a job without further attempts.
 */
export function isUnrecoverable(error: unknown): error is IdempotencyError {
  return (
    typeof error === 'object' &&
    error !== null &&
    (error as { [UNRECOVERABLE]?: unknown })[UNRECOVERABLE] === true
  );
}

/**
 * @throws an unrecoverable `IDEMPOTENCY_INVALID_KEY` error unless `value` is a non-empty,
 * well-formed string (lone surrogates would make distinct ids one key). `what` names it.
 */
export function assertKeyPart(value: unknown, what: string): asserts value is string {
  try {
    assertId(value, what);
  } catch (error) {
    if (error instanceof InvalidKeyError) throw new UnrecoverableKeyError(error.message);
    throw error;
  }
}

/** Throws what {@link assertKeyPart} throws, for a message of the adapter's own. */
export function unrecoverableKey(message: string): never {
  throw new UnrecoverableKeyError(message);
}

/**
 * The executor key of checked `parts` in `scope` (the shared edge's `<scope>:<part>:…`, each part
 * escaped). @throws an unrecoverable `IDEMPOTENCY_INVALID_KEY` error if the scope is so long that
 * the key passes the executor's limit (the edge shortens long parts, not the scope).
 */
export function jobKey(scope: string, parts: readonly string[]): string {
  const key = scopedKey(scope, parts);
  if (key.length > MAX_KEY_LENGTH) {
    unrecoverableKey(
      `Expected the key to be at most ${MAX_KEY_LENGTH} characters, got ${key.length} (its scope has ${scope.length})`,
    );
  }
  return key;
}
