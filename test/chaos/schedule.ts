// The storm's schedule. One random order of the keys is shared by every worker; each key's
// `dups` callers are dealt to `dups` different workers (while dups <= workers), and each worker
// then shuffles its list inside small windows. Workers start together and move through the
// shared order at about the same pace, so a key's callers run at about the same moment in
// different processes (they race), yet not in lockstep.

/** Caller id `key * dups + d` is the d-th caller of key `k${key}`. */
export function buildSchedule(
  keys: number,
  dups: number,
  workers: number,
  window: number,
): number[][] {
  const order = shuffled(Array.from({ length: keys }, (_, key) => key));
  const lists: number[][] = Array.from({ length: workers }, () => []);
  // A random rotation per key, so no worker is always the first caller.
  for (const key of order) {
    const first = Math.floor(Math.random() * workers);
    for (let d = 0; d < dups; d++) lists[(first + d) % workers]?.push(key * dups + d);
  }
  return lists.map((list) => shuffledInWindows(list, window));
}

function shuffledInWindows(list: number[], window: number): number[] {
  const result: number[] = [];
  for (let start = 0; start < list.length; start += window) {
    result.push(...shuffled(list.slice(start, start + window)));
  }
  return result;
}

function shuffled<T>(items: T[]): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [items[i], items[j]] = [items[j] as T, items[i] as T];
  }
  return items;
}
