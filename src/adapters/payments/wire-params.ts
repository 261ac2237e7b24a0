/**
 * `params` as a provider SDK puts them on the wire, for the fingerprint: without the properties
 * whose value is `undefined`, at any depth of plain objects and arrays. JSON and stripe-node's
 * form encoding both drop such properties, so `{ amount: 100, metadata: undefined }` and
 * `{ amount: 100 }` are the same request and must not fail as `IDEMPOTENCY_KEY_REUSED`.
 *
 * Only properties go: an `undefined` array element keeps its place (JSON sends it as `null`), and
 * `null` stays (Stripe reads it as "unset"). Objects are copied only where something was dropped.
 * What cannot be walked (a cycle, a throwing getter or proxy trap, nesting too deep for the
 * stack) is returned as it is, so the executor's fingerprint refuses it with its own typed
 * error (`IDEMPOTENCY_SERIALIZATION`) instead of this walk escaping with a raw one.
 */
export function wireParams(params: unknown): unknown {
  try {
    return withoutUndefined(params, new Set());
  } catch {
    return params;
  }
}

class Unwalkable extends Error {}

function withoutUndefined(value: unknown, ancestors: Set<object>): unknown {
  if (typeof value !== 'object' || value === null) return value;
  const isArray = Array.isArray(value);
  if (!isArray && !isPlainObject(value)) return value;
  if (ancestors.has(value)) throw new Unwalkable();
  ancestors.add(value);
  try {
    if (isArray) {
      let copy: unknown[] | undefined;
      for (let i = 0; i < value.length; i++) {
        const item: unknown = value[i];
        const wire = withoutUndefined(item, ancestors);
        if (wire !== item) {
          copy ??= value.slice();
          copy[i] = wire;
        }
      }
      return copy ?? value;
    }
    const record = value as Record<string, unknown>;
    const names = Object.keys(record);
    // `copy[name] = …` would set a prototype here; the fingerprint refuses such a name anyway.
    if (names.includes('__proto__')) throw new Unwalkable();
    let changed = false;
    const kept: [string, unknown][] = [];
    for (const name of names) {
      const item = record[name];
      if (item === undefined) {
        changed = true;
        continue;
      }
      const wire = withoutUndefined(item, ancestors);
      if (wire !== item) changed = true;
      kept.push([name, wire]);
    }
    if (!changed) return value;
    const copy: Record<string, unknown> = {};
    for (const [name, wire] of kept) copy[name] = wire;
    return copy;
  } finally {
    ancestors.delete(value);
  }
}

function isPlainObject(value: object): boolean {
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}
