import { monotonicNow } from '../clock.js';
import type { Lease } from '../store/store.js';
import type { RecordCodec } from './record-codec.js';

/** An execution whose lease the keeper renews (see ExecutionContext). */
export interface KeptLease {
  readonly lease: Lease;
  readonly leaseMs: number;
  /** The keeper's: the slot of the next renewal. */
  slot: number;
  /** The keeper's: true once released or lost. */
  stopped: boolean;
  /** Called once when the lease is lost. */
  leaseLost(): void;
  /** Called after each renewal that kept the lease. */
  leaseRenewed(): void;
}

/** A lease's expiry is pushed out again when this fraction of it is left. */
const RENEW_EVERY_FRACTION = 1 / 3;
/** Width of one slot of the wheel, ms: renewals due within one slot go out together. */
const SLOT_MS = 10;

/**
 * Renews the leases of every execution running in this process, every third of each lease, on
 * one timer: executions due in the same 10 ms slot share a bucket, and the timer is armed for
 * the earliest bucket only. Keeping and releasing an execution is a Set insertion and deletion,
 * where a timer per execution cost a `setTimeout` and a `clearTimeout` on every run (most runs
 * end long before their first renewal). The timer is cleared as soon as nothing is kept.
 */
export class LeaseKeeper {
  private readonly buckets = new Map<number, Set<KeptLease>>();
  private timer: NodeJS.Timeout | undefined;
  private timerSlot = Number.POSITIVE_INFINITY;
  /** Renewal notices by lease length: a handful of lengths in any process. */
  private readonly notices = new Map<number, Uint8Array>();

  constructor(private readonly codec: RecordCodec) {}

  /** Starts renewing `kept.lease` until {@link release} or loss. */
  keep(kept: KeptLease): void {
    kept.stopped = false;
    this.schedule(kept);
  }

  /** Stops renewing; a renewal already out is left to finish and then ignored. */
  release(kept: KeptLease): void {
    kept.stopped = true;
    this.unschedule(kept);
  }

  private schedule(kept: KeptLease): void {
    const dueAt = monotonicNow() + Math.max(1, Math.floor(kept.leaseMs * RENEW_EVERY_FRACTION));
    const slot = Math.ceil(dueAt / SLOT_MS);
    let bucket = this.buckets.get(slot);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(slot, bucket);
    }
    bucket.add(kept);
    kept.slot = slot;
    if (slot < this.timerSlot) this.arm(slot);
  }

  private unschedule(kept: KeptLease): void {
    const bucket = this.buckets.get(kept.slot);
    if (bucket === undefined || !bucket.delete(kept)) return;
    if (bucket.size > 0) return;
    this.buckets.delete(kept.slot);
    if (this.buckets.size === 0) this.disarm();
  }

  private arm(slot: number): void {
    clearTimeout(this.timer);
    this.timerSlot = slot;
    this.timer = setTimeout(() => this.tick(), Math.max(0, slot * SLOT_MS - monotonicNow()));
  }

  private disarm(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    this.timerSlot = Number.POSITIVE_INFINITY;
  }

  private tick(): void {
    this.timer = undefined;
    this.timerSlot = Number.POSITIVE_INFINITY;
    const now = Math.floor(monotonicNow() / SLOT_MS);
    let next = Number.POSITIVE_INFINITY;
    for (const [slot, bucket] of this.buckets) {
      if (slot > now) {
        if (slot < next) next = slot;
        continue;
      }
      this.buckets.delete(slot);
      for (const kept of bucket) void this.renew(kept);
    }
    if (next !== Number.POSITIVE_INFINITY && next < this.timerSlot) this.arm(next);
  }

  private async renew(kept: KeptLease): Promise<void> {
    let held: boolean;
    try {
      held = await kept.lease.extend(kept.leaseMs, this.noticeFor(kept.leaseMs));
    } catch {
      // Unreachable store: keep trying while the lease surely holds, then give it up.
      held = monotonicNow() < kept.lease.validUntil;
    }
    if (kept.stopped) return;
    if (held) {
      kept.leaseRenewed();
      this.schedule(kept);
    } else {
      kept.stopped = true;
      kept.leaseLost();
    }
  }

  private noticeFor(leaseMs: number): Uint8Array {
    let notice = this.notices.get(leaseMs);
    if (notice === undefined) {
      notice = this.codec.encodeRenewalNotice(leaseMs);
      this.notices.set(leaseMs, notice);
    }
    return notice;
  }
}
