import { InvalidKeyError } from './errors.js';

/** The longest idempotency key accepted, in UTF-16 code units (JavaScript string length). */
export const MAX_KEY_LENGTH = 1024;

/** @throws InvalidKeyError unless `key` is a non-empty string of at most {@link MAX_KEY_LENGTH}. */
export function validateKey(key: unknown): asserts key is string {
  if (typeof key !== 'string') {
    throw new InvalidKeyError(`Expected the key to be a string, got ${typeof key}`);
  }
  if (key.length === 0) throw new InvalidKeyError('Expected the key to be a non-empty string');
  if (key.length > MAX_KEY_LENGTH) {
    throw new InvalidKeyError(
      `Expected the key to be at most ${MAX_KEY_LENGTH} characters, got ${key.length}`,
    );
  }
  if (!isWellFormed(key)) {
    // UTF-8 turns every lone surrogate into U+FFFD: "s\uD800" and "s\uDC00" would be one key.
    throw new InvalidKeyError(
      'Expected the key to be well-formed Unicode (it has a lone surrogate)',
    );
  }
}

/** Whether `text` has no lone surrogate, so that it survives UTF-8 as itself. */
export const isWellFormed = (text: string): boolean =>
  (text as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Record keys are built by the Redis key layout; re-exported for the command-line tool. */
export { recordKeyOf } from '../store/redis/key-layout.js';
