import { monotonicNow } from '../../clock.js';
import { newLeaseToken } from '../lease-token.js';
import type { EntryState, KeyListener, Lease, Store, Subscription } from '../store.js';

interface Entry {
  /** A lease token while fn runs; the encoded record after. */
  value: string | Uint8Array;
  /** Local clock time (ms) the entry expires at; Infinity for never. */
  expiresAt: number;
}

/** Options of {@link MemoryStore}. */
export interface MemoryStoreOptions {
  /**
   * How often expired entries are swept out, ms (reads also drop them on sight).
   * @defaultValue 60_000
   */
  readonly sweepIntervalMs?: number;
}

/**
 * A store inside one process: the same semantics as Redis (leases, compare-and-set completion,
 * publish to waiters) for single-instance services, tests and demos. Nothing is shared with
 * other processes and nothing survives a restart.
 */
export class MemoryStore implements Store {
  private readonly entries = new Map<string, Entry>();
  private readonly fences = new Map<string, { token: number; expiresAt: number }>();
  private readonly listeners = new Map<string, Set<KeyListener>>();
  private readonly sweeper: NodeJS.Timeout;

  constructor(options: MemoryStoreOptions = {}) {
    this.sweeper = setInterval(() => this.sweep(), options.sweepIntervalMs ?? 60_000);
    this.sweeper.unref();
  }

  async claim(key: string, leaseMs: number): Promise<Lease | Uint8Array | null> {
    const held = this.live(key);
    if (held !== undefined) return typeof held.value === 'string' ? null : held.value;
    const token = newLeaseToken();
    const now = monotonicNow();
    this.entries.set(key, { value: token, expiresAt: now + leaseMs });
    return new MemoryLease(this, key, token, now + leaseMs);
  }

  async read(key: string): Promise<EntryState> {
    const entry = this.live(key);
    if (entry === undefined) return { state: 'absent' };
    const ttlMs =
      entry.expiresAt === Number.POSITIVE_INFINITY ? -1 : entry.expiresAt - monotonicNow();
    if (typeof entry.value === 'string') return { state: 'running', ttlMs };
    return { state: 'completed', bytes: entry.value, ttlMs };
  }

  async subscribe(key: string, listener: KeyListener): Promise<Subscription> {
    let set = this.listeners.get(key);
    if (set === undefined) {
      set = new Set();
      this.listeners.set(key, set);
    }
    set.add(listener);
    const owner = set;
    return {
      unsubscribe: () => {
        owner.delete(listener);
        if (owner.size === 0 && this.listeners.get(key) === owner) this.listeners.delete(key);
      },
    };
  }

  async forget(key: string): Promise<'deleted' | 'absent' | 'running'> {
    const entry = this.live(key);
    if (entry === undefined) return 'absent';
    if (typeof entry.value === 'string') return 'running';
    this.entries.delete(key);
    return 'deleted';
  }

  async close(): Promise<void> {
    clearInterval(this.sweeper);
  }

  /**
   * Stores raw bytes under a key, bypassing the lease protocol: for tests of what the executor
   * does with a record it cannot decode.
   */
  putRaw(key: string, bytes: Uint8Array, ttlMs?: number): void {
    this.entries.set(key, {
      value: bytes,
      expiresAt: ttlMs === undefined ? Number.POSITIVE_INFINITY : monotonicNow() + ttlMs,
    });
  }

  /** @internal */
  holds(key: string, token: string): Entry | undefined {
    const entry = this.live(key);
    return entry !== undefined && entry.value === token ? entry : undefined;
  }

  /** @internal */
  replace(key: string, value: Uint8Array | undefined, ttlMs: number, message: Uint8Array): void {
    if (value === undefined) this.entries.delete(key);
    else this.entries.set(key, { value, expiresAt: monotonicNow() + ttlMs });
    this.publish(key, message);
  }

  /** @internal */
  publish(key: string, message: Uint8Array): void {
    const set = this.listeners.get(key);
    if (set === undefined) return;
    // Redis delivers a message after the publishing command returns; so do we.
    const copy = Buffer.from(message);
    queueMicrotask(() => {
      for (const listener of set) listener.onMessage(copy);
    });
  }

  /** @internal */
  nextFence(key: string, fenceTtlMs: number): number {
    const now = monotonicNow();
    const last = this.fences.get(key)?.token ?? 0;
    const token = last >= now * 1000 ? last + 1 : now * 1000;
    this.fences.set(key, { token, expiresAt: now + fenceTtlMs });
    return token;
  }

  private live(key: string): Entry | undefined {
    const entry = this.entries.get(key);
    if (entry === undefined) return undefined;
    if (entry.expiresAt <= monotonicNow()) {
      this.entries.delete(key);
      return undefined;
    }
    return entry;
  }

  private sweep(): void {
    const now = monotonicNow();
    for (const [key, entry] of this.entries) {
      if (entry.expiresAt <= now) this.entries.delete(key);
    }
    for (const [key, fence] of this.fences) {
      if (fence.expiresAt <= now) this.fences.delete(key);
    }
  }
}

class MemoryLease implements Lease {
  constructor(
    private readonly store: MemoryStore,
    private readonly key: string,
    private readonly token: string,
    public validUntil: number,
  ) {}

  async extend(leaseMs: number, notice: Uint8Array): Promise<boolean> {
    const entry = this.store.holds(this.key, this.token);
    if (entry === undefined) return false;
    entry.expiresAt = monotonicNow() + leaseMs;
    this.validUntil = entry.expiresAt;
    this.store.publish(this.key, notice);
    return true;
  }

  async complete(record: Uint8Array, ttlMs: number): Promise<boolean> {
    if (this.store.holds(this.key, this.token) === undefined) return false;
    this.store.replace(this.key, record, ttlMs, record);
    return true;
  }

  async release(notice: Uint8Array): Promise<boolean> {
    if (this.store.holds(this.key, this.token) === undefined) return false;
    this.store.replace(this.key, undefined, 0, notice);
    return true;
  }

  async fencingToken(fenceTtlMs: number): Promise<number | null> {
    if (this.store.holds(this.key, this.token) === undefined) return null;
    return this.store.nextFence(this.key, fenceTtlMs);
  }
}
