import { InvalidKeyError } from '../../index.js';

/**
 * The executor key of message or job `id` in `scope`: `<scope>:<id>`, with `%` and `:` escaped
 * in the id only. The id then holds no raw `:`, so the last `:` always ends the scope and
 * distinct (scope, id) pairs give distinct keys ("a:b" + "c" is `a:b:c`, "a" + "b:c" is
 * `a:b%3Ac`), while the usual case stays readable: queue `bull:orders`, job 42 is `bull:orders:42`.
 */
export function scopedKey(scope: string, id: string, what: string): string {
  if (typeof id !== 'string' || id.length === 0) {
    throw new InvalidKeyError(
      `Expected ${what} to be a non-empty string, got ${id === '' ? 'an empty string' : typeof id}`,
    );
  }
  return `${scope}:${SPECIAL.test(id) ? id.replace(/[%:]/g, escapeChar) : id}`;
}

const SPECIAL = /[%:]/;

function escapeChar(char: string): string {
  return char === '%' ? '%25' : '%3A';
}
