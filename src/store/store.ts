import { hasBrand, setBrand } from '../brand.js';

/**
 * The storage contract the executor is built on. A store holds one entry per record key: absent,
 * a lease (while fn runs) or the encoded record (after). It knows nothing of records' contents.
 *
 * Every method may reject with {@link StoreDataError} (tell it by {@link isStoreDataError}) when
 * the entry is not ours to read (for Redis: the key holds another type); any other rejection
 * means the store is unreachable.
 */
export interface Store {
  /**
   * Takes a lease on `key` for `leaseMs` if the key is absent. Otherwise resolves with the
   * record the key holds, when the store can read it in the same round trip (a replay then
   * costs one trip), or null (a running lease, or a store that answers only "held": the
   * executor reads the key then). A `Uint8Array` is always a record, never a lease.
   */
  claim(key: string, leaseMs: number): Promise<Lease | Uint8Array | null>;
  /** What the key holds now. */
  read(key: string): Promise<EntryState>;
  /**
   * Listens for what {@link Lease.complete} and {@link Lease.release} publish for `key`.
   * Resolves once the subscription is active, so a read after it cannot miss a later message.
   */
  subscribe(key: string, listener: KeyListener): Promise<Subscription>;
  /** Deletes a finished (or unreadable) entry. A running lease is left alone. */
  forget(key: string): Promise<'deleted' | 'absent' | 'running'>;
  /** Releases the store's own connections and timers. */
  close(): Promise<void>;
  /**
   * Waits until `replicas` replicas hold every write made so far for `key` (Redis `WAIT`), or
   * `timeoutMs` passes; resolves with how many acknowledged. Stores without replicas omit it.
   */
  waitForReplicas?(key: string, replicas: number, timeoutMs: number): Promise<number>;
}

/** The state of one record key. */
export type EntryState =
  | { readonly state: 'absent' }
  | { readonly state: 'running'; readonly ttlMs: number }
  | { readonly state: 'completed'; readonly bytes: Uint8Array; readonly ttlMs: number };

/** A held lease on one key. Every method compares-and-sets on the lease token. */
export interface Lease {
  /**
   * The time (ms, on the monotonic clock of `performance.now()`, never the wall clock) before
   * which the lease is surely still held, if nothing took it. A store counts it from before the
   * claim or renewal was sent, less an allowance for the drift between its clock and ours.
   */
  readonly validUntil: number;
  /**
   * True when fn's own effects commit or roll back with the record (the PostgreSQL store's
   * transactional mode). A completion that could not be stored then leaves those effects in
   * doubt, and the caller gets `IDEMPOTENCY_STORE_UNAVAILABLE` instead of fn's value.
   */
  readonly effectsCommitWithRecord?: boolean;
  /**
   * Pushes the lease's expiry to `leaseMs` from now and publishes `notice`, so waiters re-arm
   * their expiry timers without asking the store; false when the lease is no longer ours.
   */
  extend(leaseMs: number, notice: Uint8Array): Promise<boolean>;
  /** Replaces the lease with `record` kept for `ttlMs`, and publishes it; false when lost. */
  complete(record: Uint8Array, ttlMs: number): Promise<boolean>;
  /** Deletes the lease and publishes `notice`; false when it was already lost. */
  release(notice: Uint8Array): Promise<boolean>;
  /** A number larger than any earlier fencing token of this key; null when the lease is lost. */
  fencingToken(fenceTtlMs: number): Promise<number | null>;
}

/** Receives what is published on one key's channel. */
export interface KeyListener {
  onMessage(bytes: Uint8Array): void;
  /** The subscription was re-established after a disconnect: messages may have been missed. */
  onResync(): void;
}

/** An active subscription; `unsubscribe` is idempotent. */
export interface Subscription {
  unsubscribe(): void;
}

/** The entry under a key is not something the store can read (e.g. a Redis hash). */
export class StoreDataError extends Error {
  override readonly name = 'StoreDataError';
}

/** The brand of every {@link StoreDataError}, the same in every copy of the package. */
const STORE_DATA_ERROR_BRAND = Symbol.for('idempotent-executor.StoreDataError');
setBrand(StoreDataError, STORE_DATA_ERROR_BRAND);

/**
 * True when `err` is a {@link StoreDataError}, whichever copy of the package made it (a store
 * built with the CJS build and an executor with the ESM one, say): `instanceof` is not.
 */
export function isStoreDataError(err: unknown): err is StoreDataError {
  return hasBrand(err, STORE_DATA_ERROR_BRAND);
}

/** True when `token` has the shape of a lease token (so the entry is a running execution). */
export function isLeaseToken(bytes: Uint8Array): boolean {
  if (bytes.byteLength !== LEASE_TOKEN_LENGTH) return false;
  for (const byte of bytes) {
    const hexDigit = (byte >= 0x30 && byte <= 0x39) || (byte >= 0x61 && byte <= 0x66);
    if (!hexDigit) return false;
  }
  return true;
}

/** Lease tokens are 32 lowercase hex digits, as redlock makes them (see lease-token.ts). */
export const LEASE_TOKEN_LENGTH = 32;
