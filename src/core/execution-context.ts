import type { Span } from '@opentelemetry/api';
import type { Lease } from '../store/store.js';
import { LeaseLostError } from './errors.js';
import type { KeptLease } from './lease-keeper.js';
import { leaseLostByRenewal, leaseRenewed } from './telemetry.js';

/** What fn receives. */
export interface RunContext {
  /** The idempotency key of this execution. */
  readonly key: string;
  /**
   * Aborted when the lease is lost (a renewal failed or another caller took the key over):
   * this execution's outcome will not be stored, so stop side effects that are not yet done.
   */
  readonly signal: AbortSignal;
  /**
   * A number larger than that of every earlier execution of this key that asked for one; hand it
   * to downstream writes so they can refuse a stale owner. Costs one round trip on first call,
   * nothing when never called. Rejects with `IDEMPOTENCY_LEASE_LOST` once the lease is lost.
   */
  fencingToken(): Promise<number>;
}

/**
 * The {@link RunContext} of one execution, which is also its entry in the {@link LeaseKeeper}:
 * one object per execution. Its AbortController is only made when asked for.
 */
export class ExecutionContext implements RunContext, KeptLease {
  private controller: AbortController | undefined;
  private lost: LeaseLostError | undefined;
  private fencing: Promise<number> | undefined;
  /** The LeaseKeeper's bookkeeping: the slot this execution's next renewal sits in. */
  slot = 0;
  /** Set when the execution ended or its lease was lost: no renewal after it. */
  stopped = false;
  /** The run's span, when it records: lease renewals and loss become its events. */
  span: Span | undefined = undefined;

  constructor(
    readonly key: string,
    readonly lease: Lease,
    readonly leaseMs: number,
    private readonly fenceTtlMs: number,
    private readonly storeError: (key: string, error: unknown) => unknown,
  ) {}

  get signal(): AbortSignal {
    if (this.controller === undefined) {
      this.controller = new AbortController();
      if (this.lost !== undefined) this.controller.abort(this.lost);
    }
    return this.controller.signal;
  }

  leaseLost(): void {
    this.lost = new LeaseLostError(this.key);
    if (this.span !== undefined) leaseLostByRenewal(this.span);
    this.controller?.abort(this.lost);
  }

  leaseRenewed(): void {
    if (this.span !== undefined) leaseRenewed(this.span);
  }

  fencingToken(): Promise<number> {
    if (this.fencing !== undefined) return this.fencing;
    let pending: Promise<number | null>;
    try {
      pending = this.lease.fencingToken(this.fenceTtlMs);
    } catch (error) {
      pending = Promise.reject(error);
    }
    this.fencing = pending.then(
      (token) => {
        if (token === null) throw new LeaseLostError(this.key);
        return token;
      },
      (error: unknown) => {
        this.fencing = undefined;
        throw this.storeError(this.key, error);
      },
    );
    return this.fencing;
  }
}
