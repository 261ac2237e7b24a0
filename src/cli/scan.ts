import type { Redis } from 'ioredis';

/** How much of the keyspace a walk may still visit, shared by the walks over every master. */
export class ScanBudget {
  /** False once a walk stopped before the end of its node's keyspace. */
  complete = true;

  constructor(private remaining: number) {}

  /** Takes `count` keys' worth; false when nothing was left. */
  take(count: number): boolean {
    if (this.remaining <= 0) return false;
    this.remaining -= count;
    return true;
  }
}

/** Keys asked for per SCAN call: large enough to be quick, small enough not to block Redis. */
const SCAN_COUNT = 1_000;

/**
 * The keys of `node` matching `pattern`, a batch per SCAN call: `SCAN` with `MATCH`, never
 * `KEYS`, so Redis never blocks on a large keyspace. Stops when `budget` runs out (marking it
 * incomplete) or when the caller stops iterating.
 */
export async function* scanKeys(
  node: Redis,
  pattern: string,
  budget: ScanBudget,
  type?: 'string',
): AsyncGenerator<string[]> {
  let cursor = '0';
  do {
    if (!budget.take(SCAN_COUNT)) {
      budget.complete = false;
      return;
    }
    const [next, keys] =
      type === undefined
        ? await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT)
        : await node.scan(cursor, 'MATCH', pattern, 'COUNT', SCAN_COUNT, 'TYPE', type);
    cursor = next;
    if (keys.length > 0) yield keys;
  } while (cursor !== '0');
}
