import type { Cluster, Redis } from 'ioredis';
import { RecordCodec } from '../core/record-codec.js';
import { claimedAtOf } from '../store/lease-token.js';
import { isLeaseToken } from '../store/store.js';

/** What one record key holds, as the tool shows it. */
export type Entry =
  | { readonly state: 'absent' }
  | {
      readonly state: 'running';
      readonly leaseExpiresInMs: number;
      /** When the lease was claimed, from its token; undefined for a token of another shape. */
      readonly claimedAt: Date | undefined;
    }
  | {
      readonly state: 'completed';
      /** true: the record holds a value; false: a cached error. */
      readonly ok: boolean;
      readonly value: unknown;
      readonly error: unknown;
      readonly startedAt: Date;
      readonly completedAt: Date;
      /** Time left before the record expires, ms; -1 when it never does. */
      readonly expiresInMs: number;
      /** Hex of the fingerprint hash, or null when the record was made without one. */
      readonly fingerprint: string | null;
      /** Size of the stored record, bytes. */
      readonly bytes: number;
    }
  | { readonly state: 'unreadable'; readonly reason: string };

/**
 * Decodes records with the executor's own codec. No error classes are registered: a cached
 * error comes back as a `ReplayedError` carrying the original name, message, code and
 * properties, which is what the tool shows; no class of the application is ever needed.
 */
export const codec = new RecordCodec([], Number.MAX_SAFE_INTEGER);

/** What `raw` (a record key's value) and `pttl` (its PTTL) say about idempotency key `key`. */
export function entryOf(key: string, raw: Buffer | null, pttl: number): Entry {
  if (raw === null) return { state: 'absent' };
  if (isLeaseToken(raw)) {
    if (pttl < 0) return { state: 'unreadable', reason: 'a lease token with no expiry' };
    return {
      state: 'running',
      leaseExpiresInMs: pttl,
      claimedAt: claimedAtOf(raw.toString('latin1')),
    };
  }
  let decoded: ReturnType<RecordCodec['decode']>;
  try {
    decoded = codec.decode(raw, key);
  } catch (err) {
    return { state: 'unreadable', reason: err instanceof Error ? err.message : String(err) };
  }
  if (decoded.kind !== 'record') return { state: 'unreadable', reason: 'a release notice' };
  const { outcome, fingerprint, startedAt, completedAt } = decoded.record;
  return {
    state: 'completed',
    ok: outcome.ok,
    value: outcome.ok ? outcome.value : undefined,
    error: outcome.ok ? undefined : outcome.error,
    startedAt: new Date(startedAt),
    completedAt: new Date(completedAt),
    expiresInMs: pttl,
    fingerprint: fingerprint === null ? null : Buffer.from(fingerprint).toString('hex'),
    bytes: raw.byteLength,
  };
}

/** Reads the record keys `redisKeys` (of idempotency keys `keys`) in one pipeline on `node`. */
export async function readEntries(
  node: Redis | Cluster,
  redisKeys: readonly string[],
  keys: readonly string[],
): Promise<Entry[]> {
  const pipeline = node.pipeline();
  for (const redisKey of redisKeys) pipeline.getBuffer(redisKey).pttl(redisKey);
  const replies = (await pipeline.exec()) ?? [];
  return keys.map((key, i) => {
    const [readError, raw] = replies[2 * i] ?? [new Error('no reply'), null];
    const [, pttl] = replies[2 * i + 1] ?? [null, -1];
    if (readError !== null) return { state: 'unreadable', reason: readError.message };
    return entryOf(key, raw as Buffer | null, pttl as number);
  });
}

/** The last fencing token handed out for the record key, or null when there is no counter. */
export async function lastFencingToken(
  client: Redis | Cluster,
  recordKey: string,
): Promise<string | null> {
  try {
    return await client.get(`${recordKey}:fence`);
  } catch {
    return null;
  }
}
