// Everything the parent learns during a run, kept as evidence for the report: what each caller
// got, which processes died and how, the faults injected with their times, and the executor
// events workers saw. The report classifies from this and the ledger, nothing else.
import type { FaultKind, ServerFaultKind } from './options.js';
import type { WorkerEvent } from './protocol.js';

/** What one caller got, as its worker reported it. */
export type CallerResult = Omit<Extract<WorkerEvent, { event: 'settled' }>, 'event'>;

export interface Death {
  readonly slot: number;
  readonly pid: number;
  /** When the parent saw the exit. */
  readonly t: number;
  readonly signal: string | null;
  readonly code: number | null;
  /** The worker's last words when it killed itself on purpose. */
  readonly dying?: { phase: 'mid-fn' | 'after-fn'; key: string; token: number; t: number };
}

export interface Stall {
  readonly slot: number;
  readonly pid: number;
  readonly key: string;
  readonly token: number;
  readonly from: number;
  /** Absent when the worker died while stalled. */
  to?: number;
}

/** A fault the parent injected in the store's server; it may show its effects until `to`. */
export interface ServerFault {
  readonly kind: ServerFaultKind;
  readonly from: number;
  readonly to: number;
  /** The pid whose connections were killed; undefined when every worker was hit. */
  readonly pid?: number;
  /** A master SIGKILL: the slot ranges the killed master served. */
  readonly slots?: readonly (readonly [number, number])[];
  readonly detail: string;
}

export interface ExecutorEventSeen {
  readonly pid: number;
  readonly key: string;
  readonly t: number;
}

export interface WorkerClose {
  readonly slot: number;
  readonly pid: number;
  readonly leaked: readonly string[];
  readonly unlanded: readonly string[];
}

export class Evidence {
  readonly callers = new Map<number, CallerResult>();
  readonly deaths: Death[] = [];
  readonly stalls: Stall[] = [];
  readonly serverFaults: ServerFault[] = [];
  readonly leaseLost: ExecutorEventSeen[] = [];
  readonly storeFailed: ExecutorEventSeen[] = [];
  /** fn failed with an error the executor did not keep, and freed the key. */
  readonly released: ExecutorEventSeen[] = [];
  readonly unhandled: { pid: number; kind: string; message: string }[] = [];
  readonly closes: WorkerClose[] = [];
  /** The soak's samples: each worker's heap and RSS, and Redis's memory, bytes. */
  readonly memory: { slot: number; pid: number; t: number; heapUsed: number; rss: number }[] = [];
  readonly redisMemory: { t: number; usedMemory: number; usedMemoryRss: number }[] = [];
  /** Every fault landed, by kind (worker faults count when the worker says it landed). */
  readonly landed = new Map<FaultKind, number>();
  /** Caller ids that had not settled when the storm's deadline passed. */
  hung: number[] = [];
  stormStart = 0;
  stormEnd = 0;

  /** The raw evidence, for `--evidence`. */
  toJSON(): Record<string, unknown> {
    return {
      stormStart: this.stormStart,
      stormEnd: this.stormEnd,
      callers: [...this.callers.values()],
      deaths: this.deaths,
      stalls: this.stalls,
      serverFaults: this.serverFaults,
      leaseLost: this.leaseLost,
      storeFailed: this.storeFailed,
      released: this.released,
      unhandled: this.unhandled,
      closes: this.closes,
      hung: this.hung,
    };
  }

  land(kind: FaultKind): void {
    this.landed.set(kind, (this.landed.get(kind) ?? 0) + 1);
  }
}
