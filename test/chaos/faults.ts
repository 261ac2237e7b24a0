// When and how faults are injected. Each enabled fault is planned `rounds` times at random points
// of the storm's progress (share of callers settled), so every one lands however fast the storm
// runs. Worker faults are armed in a busy worker and land at its next execution of fn; server
// faults are run by the parent through the store's fault set (redis-faults.ts,
// postgres-faults.ts), one at a time, and logged with the window of their effects.
import type { Evidence, ServerFault } from './evidence.js';
import {
  type ChaosOptions,
  type FaultKind,
  isWorkerFault,
  type ServerFaultKind,
} from './options.js';
import type { Storm } from './storm.js';

/**
 * The server faults of one store: each injects one round (`round` lets a fault alternate its
 * flavours) and resolves with its log entry, or undefined when it found nothing to hit.
 */
export interface ServerFaultSet {
  readonly inject: Partial<
    Record<ServerFaultKind, (round: number) => Promise<ServerFault | undefined>>
  >;
  close(): Promise<void>;
}

interface PlannedFault {
  readonly kind: FaultKind;
  /** Share of callers settled at which it fires. */
  readonly at: number;
  readonly round: number;
}

export class FaultInjector {
  private readonly plan: PlannedFault[];
  /** Server faults run one after another. */
  private serverQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly options: ChaosOptions,
    private readonly storm: Storm,
    private readonly server: ServerFaultSet,
    private readonly evidence: Evidence,
  ) {
    this.plan = planFaults(options);
    for (const { kind } of this.plan) {
      if (!isWorkerFault(kind) && server.inject[kind] === undefined) {
        throw new Error(`The ${options.store} fault set cannot inject ${kind}`);
      }
    }
    storm.onProgress((settled, total) => this.fireDue(settled / total));
  }

  /** Waits for the server faults still running, then closes the fault set's connections. */
  async close(): Promise<void> {
    this.plan.length = 0;
    await this.serverQueue;
    await this.server.close();
  }

  private fireDue(progress: number): void {
    while (this.plan.length > 0 && (this.plan[0] as PlannedFault).at <= progress) {
      const fault = this.plan.shift() as PlannedFault;
      if (!this.fire(fault)) {
        // No worker has work left to fault: nothing to do but give up on this one.
        process.stderr.write(`chaos: ${fault.kind} (round ${fault.round}) found no busy worker\n`);
      }
    }
  }

  private fire(fault: PlannedFault): boolean {
    const { options, storm } = this;
    const { kind, round } = fault;
    if (isWorkerFault(kind)) {
      const slot = storm.busySlot();
      if (slot === undefined) return false;
      storm.arm(slot, kind === 'stall' ? { kind, ms: options.stallMs } : { kind });
      return true;
    }
    const inject = this.server.inject[kind];
    if (inject === undefined) return false;
    this.serverQueue = this.serverQueue.then(async () => {
      try {
        const logged = await inject(round);
        if (logged === undefined) return;
        this.evidence.serverFaults.push(logged);
        this.evidence.land(logged.kind);
      } catch (error) {
        process.stderr.write(`chaos: a ${kind} fault failed: ${String(error)}\n`);
      }
    });
    return true;
  }
}

/**
 * A storm: each fault at random points between 5 % and 65 % of the progress. A soak: every
 * fault's rounds spread over the whole run, one fault at a time at about even intervals, in a
 * random order.
 */
function planFaults(options: ChaosOptions): PlannedFault[] {
  const plan: PlannedFault[] = [];
  for (const kind of options.faults) {
    for (let round = 0; round < options.rounds; round++) {
      plan.push({ kind, round, at: 0.05 + Math.random() * 0.6 });
    }
  }
  if (options.soakMs !== undefined) {
    plan.sort(() => Math.random() - 0.5);
    return plan.map((fault, index) => ({ ...fault, at: 0.03 + (0.9 * index) / plan.length }));
  }
  return plan.sort((a, b) => a.at - b.at);
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
