import { createHash, type Hash } from 'node:crypto';

/** Strict UTF-8: two different byte strings must never decode to one text (U+FFFD). */
const utf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * A digest of a request body that cannot fail, whatever the client sent. JSON bodies (already
 * parsed by the framework, or bytes with a JSON content type) are compared as canonical JSON
 * text, written here with object keys sorted, so property order does not matter; other bytes
 * are compared as bytes.
 *
 * Written by hand rather than handed to the executor's encoder because the client controls the
 * body: own `__proto__` keys are just keys here, lone surrogates are escaped (`"\ud800"` and
 * `"\udc00"` stay distinct), and the walk is iterative, so deep nesting cannot overflow the stack.
 */
export function fingerprintBody(body: unknown, contentType: string | undefined): string {
  const hash = createHash('sha256');
  let value = body;
  if (
    (value instanceof Uint8Array || typeof value === 'string') &&
    /json/i.test(contentType ?? '')
  ) {
    try {
      value = JSON.parse(typeof value === 'string' ? value : utf8.decode(value));
    } catch {
      // not JSON (or not UTF-8) after all: compare it as sent
    }
  }
  writeCanonical(hash, value);
  return hash.digest('base64url');
}

interface Frame {
  readonly container: object;
  /** Sorted own enumerable keys of an object; null for an array. */
  readonly keys: readonly string[] | null;
  readonly length: number;
  index: number;
}

function writeCanonical(hash: Hash, root: unknown): void {
  const stack: Frame[] = [];
  // Containers being written: a cycle (only a custom body parser can make one) is written once.
  const open = new Set<object>();
  let next: { value: unknown } | undefined = { value: root };
  for (;;) {
    if (next !== undefined) {
      const { value } = next;
      next = undefined;
      if (value === null || value === undefined) {
        hash.update('null');
      } else if (typeof value === 'string') {
        hash.update(JSON.stringify(value));
      } else if (typeof value === 'number') {
        hash.update(Number.isFinite(value) ? JSON.stringify(value) : `#${value}`);
      } else if (typeof value === 'boolean') {
        hash.update(value ? 'true' : 'false');
      } else if (typeof value === 'bigint') {
        hash.update(`#${value}n`);
      } else if (typeof value !== 'object') {
        hash.update(`#${typeof value}`);
      } else if (value instanceof Uint8Array) {
        hash.update(`#bytes:${value.byteLength}:`);
        hash.update(value);
      } else if (value instanceof Date) {
        hash.update(`#date:${value.getTime()}`);
      } else if (open.has(value)) {
        hash.update('#cycle');
      } else {
        open.add(value);
        if (Array.isArray(value)) {
          hash.update('[');
          stack.push({ container: value, keys: null, length: value.length, index: 0 });
        } else {
          const keys = Object.keys(value).sort();
          hash.update('{');
          stack.push({ container: value, keys, length: keys.length, index: 0 });
        }
      }
    }
    const frame = stack.at(-1);
    if (frame === undefined) return;
    if (frame.index === frame.length) {
      hash.update(frame.keys === null ? ']' : '}');
      open.delete(frame.container);
      stack.pop();
      continue;
    }
    if (frame.index > 0) hash.update(',');
    if (frame.keys === null) {
      next = { value: (frame.container as readonly unknown[])[frame.index] };
    } else {
      const key = frame.keys[frame.index] as string;
      hash.update(`${JSON.stringify(key)}:`);
      next = { value: (frame.container as Record<string, unknown>)[key] };
    }
    frame.index++;
  }
}
