// A Store that passes everything through to the Redis store, except that it lets the worker run
// a hook at the moment the executor asks to store a completed record. The executor only calls
// `lease.complete()` after fn has returned and its outcome is encoded, so a SIGKILL from that
// hook lands exactly between "fn's side effect is done" (the ledger row) and "the completion is
// stored": the window no timer or signal sent from outside could hit reliably.
import type { EntryState, KeyListener, Lease, Store, Subscription } from '../../src/index.js';

/** Called with the record key before its completion is sent; it may never return. */
export type BeforeComplete = (recordKey: string) => void;

export class CompletionTrapStore implements Store {
  constructor(
    private readonly inner: Store,
    private readonly beforeComplete: BeforeComplete,
  ) {}

  async claim(key: string, leaseMs: number): Promise<Lease | Uint8Array | null> {
    const lease = await this.inner.claim(key, leaseMs);
    // null (held) and bytes (the record found by the claim) pass through untouched.
    if (lease === null || lease instanceof Uint8Array) return lease;
    return new TrappedLease(lease, () => this.beforeComplete(key));
  }

  read(key: string): Promise<EntryState> {
    return this.inner.read(key);
  }

  subscribe(key: string, listener: KeyListener): Promise<Subscription> {
    return this.inner.subscribe(key, listener);
  }

  forget(key: string): Promise<'deleted' | 'absent' | 'running'> {
    return this.inner.forget(key);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

class TrappedLease implements Lease {
  constructor(
    private readonly inner: Lease,
    private readonly beforeComplete: () => void,
  ) {}

  get validUntil(): number {
    return this.inner.validUntil;
  }

  extend(leaseMs: number, notice: Uint8Array): Promise<boolean> {
    return this.inner.extend(leaseMs, notice);
  }

  complete(record: Uint8Array, ttlMs: number): Promise<boolean> {
    this.beforeComplete();
    return this.inner.complete(record, ttlMs);
  }

  release(notice: Uint8Array): Promise<boolean> {
    return this.inner.release(notice);
  }

  fencingToken(fenceTtlMs: number): Promise<number | null> {
    return this.inner.fencingToken(fenceTtlMs);
  }
}
