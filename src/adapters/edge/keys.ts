import { createHash } from 'node:crypto';
import { InvalidKeyError, InvalidOptionError, MAX_KEY_LENGTH } from '../../index.js';

/** A UTF-16 surrogate not part of a pair: UTF-8 cannot carry it (it becomes U+FFFD). */
const LONE_SURROGATE = /\p{Surrogate}/u;

/** Whether `value` is well-formed Unicode (no lone surrogate), so it survives UTF-8 as itself. */
export function isWellFormed(value: string): boolean {
  return !LONE_SURROGATE.test(value);
}

/**
 * @throws InvalidKeyError unless `id` is a non-empty, well-formed string. `what` names it in the
 * message ("the webhook event id").
 */
export function assertId(id: unknown, what: string): asserts id is string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidKeyError(
      `Expected ${what} to be a non-empty string, got ${id === '' ? 'an empty string' : typeof id}`,
    );
  }
  if (!isWellFormed(id)) {
    throw new InvalidKeyError(
      `Expected ${what} to be well-formed Unicode (it has a lone surrogate)`,
    );
  }
}

/** @throws InvalidOptionError unless `value` is a non-empty, well-formed string. */
export function assertScopeOption(name: string, value: unknown): asserts value is string {
  if (typeof value !== 'string' || value.length === 0 || !isWellFormed(value)) {
    throw new InvalidOptionError(name, 'a non-empty, well-formed string', value);
  }
}

const SPECIAL = /[%:#]/;
const ESCAPES: Readonly<Record<string, string>> = { '%': '%25', ':': '%3A', '#': '%23' };

/** `%`, `:` and `#` escaped: `#` only ever starts a hashed part (see {@link scopedKey}). */
function escapePart(part: string): string {
  return SPECIAL.test(part) ? part.replace(/[%:#]/g, (c) => ESCAPES[c] ?? c) : part;
}

/**
 * The executor key of `parts` under `prefix`: `<prefix>:<part>:<part>…`, with `%`, `:` and `#`
 * escaped in each part, so distinct part lists give distinct keys ("a:b" + "c" is `a%3Ab:c`,
 * "a" + "b:c" is `a:b%3Ac`) and the usual case stays readable (`webhook:stripe:evt_1`).
 *
 * Every part must be well-formed Unicode (checked by the caller: {@link assertId}). When the
 * key would pass the executor's {@link MAX_KEY_LENGTH}, every part but the last is replaced by
 * its SHA-256: a long route, scope or queue name never makes a valid key too long, and the
 * key stays readable at its end.
 */
export function scopedKey(prefix: string, parts: readonly string[]): string {
  const escaped = parts.map(escapePart);
  const key = `${prefix}:${escaped.join(':')}`;
  if (key.length <= MAX_KEY_LENGTH) return key;
  const last = escaped.at(-1) ?? '';
  const digest = createHash('sha256').update(escaped.slice(0, -1).join(':')).digest('base64url');
  const hashed = `${prefix}:#${digest}:${last}`;
  if (hashed.length <= MAX_KEY_LENGTH) return hashed;
  // Only an id of its own near the limit gets here: hash it too (still one key per id).
  return `${prefix}:#${createHash('sha256').update(escaped.join(':')).digest('base64url')}`;
}
