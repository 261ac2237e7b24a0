// Why a key ran again: each execution after a key's first is explained by what happened to the
// execution before it, from evidence only (ledger rows, the parent's fault log with times and
// pids, the executor events and caller outcomes the workers reported). What no evidence
// explains is UNEXPLAINED, and a run with any fails.
import { getOrCreate } from './collections.js';
import type { Evidence, ExecutorEventSeen, RedisFault } from './evidence.js';
import type { ExecutionRow } from './ledger.js';

export const CAUSES = {
  killedMidFn: 'owner SIGKILLed mid-fn (after its ledger row)',
  killedAfterFn: 'owner SIGKILLed after fn returned, before its completion was stored',
  killedInFlight: 'owner SIGKILLed while this execution was in flight (another key was the target)',
  stall: 'lease lost to a stall of the owner (event loop blocked past the lease)',
  connection: 'lease lost to a Redis pause / connection kill',
  restartLease: 'lease lost while Redis restarted (persistent Redis)',
  unstoredRestart: 'completion not stored: Redis unreachable during a restart (store-failed)',
  unstoredConnection: 'completion not stored: Redis paused / connection killed (store-failed)',
  noPersistence: 'Redis restarted without persistence (lease or record lost)',
  unexplained: 'UNEXPLAINED',
} as const;
export type Cause = (typeof CAUSES)[keyof typeof CAUSES];

export interface Explanation {
  readonly cause: Cause;
  /** What the evidence was, or why none fits. */
  readonly because: string;
}

export class Classifier {
  /** Tokens some caller in the given pid received as a value: that execution's caller settled. */
  private readonly settledTokensByPid = new Map<number, Set<number>>();

  constructor(
    private readonly evidence: Evidence,
    private readonly persistence: boolean,
  ) {
    for (const caller of evidence.callers.values()) {
      if (caller.token === undefined) continue;
      getOrCreate(this.settledTokensByPid, caller.pid, () => new Set<number>()).add(caller.token);
    }
  }

  /** Why `next` ran although `previous` (the key's execution before it) had run. */
  explain(previous: ExecutionRow, next: ExecutionRow): Explanation {
    const killed = this.killed(previous);
    if (killed !== undefined) return killed;
    const lost = firstAfter(this.evidence.leaseLost, previous);
    if (lost !== undefined) return this.leaseLost(previous, lost);
    const failed = firstAfter(this.evidence.storeFailed, previous);
    if (failed !== undefined) return this.storeFailed(previous, failed);
    const restart = this.evidence.redisFaults.find(
      (fault) =>
        fault.kind === 'restart' &&
        fault.from >= previous.writtenAt &&
        fault.from <= next.startedAt,
    );
    if (restart !== undefined) {
      return this.persistence
        ? {
            cause: CAUSES.unexplained,
            because: `a completed record was lost across a restart with AOF (${restart.detail})`,
          }
        : {
            cause: CAUSES.noPersistence,
            because: `completed, then Redis restarted at ${iso(restart.from)} (${restart.detail})`,
          };
    }
    return {
      cause: CAUSES.unexplained,
      because: 'the previous execution completed with no fault, lease loss or store failure seen',
    };
  }

  private killed(previous: ExecutionRow): Explanation | undefined {
    const death = this.evidence.deaths.find((d) => d.pid === previous.pid);
    if (death === undefined || death.t < previous.writtenAt) return undefined;
    const { dying } = death;
    if (dying !== undefined && dying.key === previous.key && dying.token === previous.token) {
      return {
        cause: dying.phase === 'mid-fn' ? CAUSES.killedMidFn : CAUSES.killedAfterFn,
        because: `pid ${death.pid} said it was dying (${dying.phase}) holding this execution`,
      };
    }
    // The process died holding the key unless one of its callers received this execution's value.
    if (this.settledTokensByPid.get(previous.pid)?.has(previous.token) === true) return undefined;
    return {
      cause: CAUSES.killedInFlight,
      because: `pid ${death.pid} was killed at ${iso(death.t)} before any caller there got this execution's value`,
    };
  }

  private leaseLost(previous: ExecutionRow, lost: ExecutorEventSeen): Explanation {
    const stall = this.evidence.stalls.find(
      (s) =>
        s.pid === previous.pid && overlaps(s.from, s.to ?? Infinity, previous.startedAt, lost.t),
    );
    if (stall !== undefined) {
      return {
        cause: CAUSES.stall,
        because: `pid ${stall.pid} stalled ${Math.round((stall.to ?? lost.t) - stall.from)} ms from ${iso(stall.from)}; lease-lost at ${iso(lost.t)}`,
      };
    }
    const fault = this.redisFaultDuring(previous, lost.t);
    if (fault === undefined) {
      return {
        cause: CAUSES.unexplained,
        because: `lease-lost at ${iso(lost.t)} with no stall or Redis fault around it`,
      };
    }
    if (fault.kind !== 'restart') {
      return { cause: CAUSES.connection, because: `${fault.kind} ${fault.detail}` };
    }
    return {
      cause: this.persistence ? CAUSES.restartLease : CAUSES.noPersistence,
      because: `lease-lost at ${iso(lost.t)} after a restart (${fault.detail})`,
    };
  }

  private storeFailed(previous: ExecutionRow, failed: ExecutorEventSeen): Explanation {
    const fault = this.redisFaultDuring(previous, failed.t);
    if (fault === undefined) {
      return {
        cause: CAUSES.unexplained,
        because: `store-failed at ${iso(failed.t)} with no Redis fault around it`,
      };
    }
    return {
      cause: fault.kind === 'restart' ? CAUSES.unstoredRestart : CAUSES.unstoredConnection,
      because: `store-failed at ${iso(failed.t)} during ${fault.kind} ${fault.detail}`,
    };
  }

  /**
   * The Redis fault whose window overlaps the execution and hits its process (or every one);
   * of several, the one that began last before the effect was seen.
   */
  private redisFaultDuring(previous: ExecutionRow, until: number): RedisFault | undefined {
    let latest: RedisFault | undefined;
    for (const fault of this.evidence.redisFaults) {
      if (fault.pid !== undefined && fault.pid !== previous.pid) continue;
      if (!overlaps(fault.from, fault.to, previous.startedAt, until)) continue;
      if (latest === undefined || fault.from > latest.from) latest = fault;
    }
    return latest;
  }
}

/** The first event of the execution's process and key seen after its ledger row. */
function firstAfter(
  events: readonly ExecutorEventSeen[],
  row: ExecutionRow,
): ExecutorEventSeen | undefined {
  return events.find((e) => e.pid === row.pid && e.key === row.key && e.t >= row.writtenAt);
}

function overlaps(aFrom: number, aTo: number, bFrom: number, bTo: number): boolean {
  return aFrom <= bTo && bFrom <= aTo;
}

function iso(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}
