// The parent's side of the storm: one slot per worker, each with its list of callers. It starts
// the workers together, records what they report, replaces a killed worker with a new process
// that carries on with the callers the dead one had not settled, and shuts everything down.
import { WorkerProcess } from '../helpers/worker/parent.js';
import type { BodyOf } from '../helpers/worker/protocol.js';
import type { Evidence } from './evidence.js';
import type { ArmedFault, WorkerConfig, WorkerEvent, WorkerRequests } from './protocol.js';

const WORKER_SCRIPT = new URL('./worker.ts', import.meta.url);
/** How much of a worker's stderr is kept for diagnostics. */
const STDERR_TAIL = 4_000;

type Worker = WorkerProcess<WorkerRequests, WorkerEvent>;

interface Slot {
  readonly index: number;
  readonly callers: readonly number[];
  worker: Worker;
  ready: Promise<void>;
  /** The current process got its callers: it can be faulted. */
  started: boolean;
  /** Faults sent to the current process that it has not landed yet, in the order sent. */
  armed: ArmedFault[];
  last?: Extract<WorkerEvent, { event: 'dying' }>;
}

export class Storm {
  private readonly slots: Slot[];
  private readonly total: number;
  private finishing = false;
  private readonly progressListeners = new Set<(settled: number, total: number) => void>();
  private readonly replacements = new Set<Promise<void>>();
  /** Set when a worker died before it was ready: it cannot start, and the run cannot go on. */
  private startFailure: Error | undefined;

  /** Who waits for a slot's next `holding` event (see {@link holdFn}). */
  private readonly holdWaiters = new Map<number, (event: { key: string; token: number }) => void>();
  /** Slots partitioned right now: worker faults armed there would not land before it heals. */
  private readonly partitioned = new Set<number>();
  /** A soak: when the paced schedule ends (ms since the epoch); undefined for a storm. */
  private until: number | undefined;

  constructor(
    private readonly configFor: (slot: number) => WorkerConfig,
    schedule: readonly (readonly number[])[],
    private readonly evidence: Evidence,
    private readonly paceMs?: number,
  ) {
    this.total = schedule.reduce((sum, callers) => sum + callers.length, 0);
    this.slots = schedule.map((callers, index) => {
      const slot = { index, callers, armed: [] } as unknown as Slot;
      this.spawn(slot);
      return slot;
    });
  }

  get callerCount(): number {
    return this.total;
  }

  onProgress(listener: (settled: number, total: number) => void): void {
    this.progressListeners.add(listener);
  }

  /** Waits until every worker is ready, then starts them all at once. */
  async start(): Promise<void> {
    await Promise.all(this.slots.map((slot) => slot.ready));
    if (this.startFailure !== undefined) throw this.startFailure;
    this.evidence.stormStart = Date.now();
    if (this.paceMs !== undefined) this.until = this.evidence.stormStart + this.paceMs;
    for (const slot of this.slots) {
      slot.worker.tell('start', this.startRequest(slot.callers));
      slot.started = true;
    }
  }

  /** Resolves when every caller settled (true), or at the deadline (false). */
  async settled(deadlineMs: number): Promise<boolean> {
    const deadline = Date.now() + deadlineMs;
    while (this.evidence.callers.size < this.total) {
      if (this.startFailure !== undefined) throw this.startFailure;
      if (Date.now() > deadline) {
        this.evidence.hung = this.allCallers().filter((id) => !this.evidence.callers.has(id));
        return false;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    this.evidence.stormEnd = Date.now();
    return true;
  }

  /** A slot whose worker is up and still has callers to run, picked at random. */
  busySlot(): number | undefined {
    const busy = this.slots.filter(
      (slot) =>
        slot.started && !this.partitioned.has(slot.index) && this.remaining(slot).length > 0,
    );
    return busy[Math.floor(Math.random() * busy.length)]?.index;
  }

  /** The current process of `slot`. */
  workerOf(slot: number): Worker | undefined {
    return this.slots[slot]?.worker;
  }

  arm(slot: number, fault: ArmedFault): void {
    const target = this.slots[slot];
    if (target === undefined) return;
    target.armed.push(fault);
    target.worker.tell('arm', { fault });
  }

  /**
   * Arms a `hold` in `slot` and resolves when the worker's next fn is running it (the execution
   * it holds), or undefined if none did within `timeoutMs`. The slot counts as partitioned (no
   * worker fault is armed there) until {@link healed}.
   */
  holdFn(
    slot: number,
    ms: number,
    timeoutMs: number,
  ): Promise<{ key: string; token: number } | undefined> {
    this.partitioned.add(slot);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.holdWaiters.delete(slot);
        const target = this.slots[slot];
        const index = target?.armed.findIndex((fault) => fault.kind === 'hold') ?? -1;
        if (index >= 0) target?.armed.splice(index, 1);
        resolve(undefined);
      }, timeoutMs);
      this.holdWaiters.set(slot, (event) => {
        clearTimeout(timer);
        resolve(event);
      });
      this.arm(slot, { kind: 'hold', ms });
    });
  }

  healed(slot: number): void {
    this.partitioned.delete(slot);
  }

  /** Every worker closes its executor and connections, reports leaks and exits. */
  async finish(): Promise<void> {
    this.finishing = true;
    await Promise.all([...this.replacements]);
    await Promise.all(
      this.slots.map(async (slot) => {
        await slot.ready;
        slot.worker.tell('finish', {});
        const timer = setTimeout(() => void slot.worker.kill(), 15_000);
        await slot.worker.ended;
        clearTimeout(timer);
      }),
    );
  }

  private spawn(slot: Slot): void {
    const worker: Worker = new WorkerProcess(WORKER_SCRIPT, this.configFor(slot.index), {
      keepEvents: false,
      stderrTail: STDERR_TAIL,
    });
    worker.onEvent((event) => this.handle(slot, worker, event));
    // A worker that dies before it is ready cannot start (a replacement would die the same
    // way): fail the run rather than wait for it forever.
    slot.ready = worker.ready(Number.POSITIVE_INFINITY).catch((error: Error) => {
      this.startFailure ??= error;
    });
    slot.worker = worker;
    slot.started = false;
    slot.armed = [];
    delete slot.last;
    void worker.ended.then((end) => {
      if (!worker.isReady) return;
      if (this.finishing && end.signal === null) return;
      const death = {
        slot: slot.index,
        pid: worker.pid,
        t: end.t,
        signal: end.signal,
        code: end.code,
        ...(slot.last === undefined
          ? {}
          : {
              dying: {
                phase: slot.last.phase,
                key: slot.last.key,
                token: slot.last.token,
                t: slot.last.t,
              },
            }),
      };
      this.evidence.deaths.push(death);
      if (this.finishing) return;
      if (death.dying === undefined) {
        process.stderr.write(`worker ${worker.pid} exited unexpectedly: ${worker.stderr}\n`);
      }
      const unlanded = slot.armed;
      const replaced = this.replace(slot, unlanded);
      this.replacements.add(replaced);
      void replaced.finally(() => this.replacements.delete(replaced));
    });
  }

  /** Starts a new process in the slot; it runs what the dead one left and its unlanded faults. */
  private async replace(slot: Slot, unlanded: readonly ArmedFault[]): Promise<void> {
    this.spawn(slot);
    await slot.ready;
    for (const fault of unlanded) this.arm(slot.index, fault);
    slot.worker.tell('start', this.startRequest(this.remaining(slot)));
    slot.started = true;
  }

  private startRequest(callers: readonly number[]): BodyOf<WorkerRequests, 'start'> {
    return this.until === undefined ? { callers } : { callers, until: this.until };
  }

  private remaining(slot: Slot): number[] {
    return slot.callers.filter((id) => !this.evidence.callers.has(id));
  }

  private allCallers(): number[] {
    return this.slots.flatMap((slot) => slot.callers);
  }

  private handle(slot: Slot, worker: Worker, event: WorkerEvent) {
    const { evidence } = this;
    switch (event.event) {
      case 'settled': {
        // Past the deadline the callers still out are hung, whatever they get at shutdown.
        if (this.finishing) break;
        const { event: _event, ...result } = event;
        evidence.callers.set(event.id, result);
        for (const listener of this.progressListeners) listener(evidence.callers.size, this.total);
        break;
      }
      case 'dying':
        slot.last = event;
        this.landed(slot, event.phase === 'mid-fn' ? 'kill-mid' : 'kill-after');
        break;
      case 'stall-start':
        this.landed(slot, 'stall');
        evidence.stalls.push({
          slot: slot.index,
          pid: worker.pid,
          key: event.key,
          token: event.token,
          from: event.t,
        });
        break;
      case 'holding': {
        const index = slot.armed.findIndex((fault) => fault.kind === 'hold');
        if (index >= 0) slot.armed.splice(index, 1);
        const waiter = this.holdWaiters.get(slot.index);
        this.holdWaiters.delete(slot.index);
        waiter?.({ key: event.key, token: event.token });
        break;
      }
      case 'stall-end': {
        const stall = evidence.stalls.find((s) => s.pid === worker.pid && s.token === event.token);
        if (stall !== undefined) stall.to = event.t;
        break;
      }
      case 'lease-lost':
        evidence.leaseLost.push({ pid: worker.pid, key: event.key, t: event.t });
        break;
      case 'store-failed':
        evidence.storeFailed.push({ pid: worker.pid, key: event.key, t: event.t });
        break;
      case 'released':
        evidence.released.push({ pid: worker.pid, key: event.key, t: event.t });
        break;
      case 'unhandled':
        evidence.unhandled.push({ pid: worker.pid, kind: event.kind, message: event.message });
        break;
      case 'drained':
        break;
      case 'memory':
        evidence.memory.push({
          slot: slot.index,
          pid: worker.pid,
          t: event.t,
          heapUsed: event.heapUsed,
          rss: event.rss,
        });
        break;
      case 'closed':
        evidence.closes.push({
          slot: slot.index,
          pid: worker.pid,
          leaked: event.leaked,
          unlanded: event.unlanded,
        });
        break;
    }
  }

  private landed(slot: Slot, kind: Exclude<ArmedFault['kind'], 'hold'>): void {
    const index = slot.armed.findIndex((fault) => fault.kind === kind);
    if (index >= 0) slot.armed.splice(index, 1);
    this.evidence.land(kind);
  }
}
