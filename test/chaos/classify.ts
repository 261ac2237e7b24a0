// Why a key ran again: each execution after a key's first is explained by what happened to the
// execution before it, from evidence only (ledger rows, the parent's fault log with times and
// pids, the executor events and caller outcomes the workers reported). What no evidence
// explains is UNEXPLAINED, and a run with any fails.
import { recordKeyOf } from '../../src/core/keys.js';
import { keySlot } from '../../src/store/redis/key-slot.js';
import { getOrCreate } from './collections.js';
import type { Evidence, ExecutorEventSeen, ServerFault, Stall } from './evidence.js';
import type { ExecutionRow } from './ledger.js';
import type { ServerFaultKind, StoreKind } from './options.js';

export const CAUSES = {
  killedMidFn: 'owner SIGKILLed mid-fn (after its ledger row)',
  killedAfterFn: 'owner SIGKILLed after fn returned, before its completion was stored',
  killedInFlight: 'owner SIGKILLed while this execution was in flight (another key was the target)',
  stall: 'lease lost to a stall of the owner (event loop blocked past the lease)',
  connection: 'lease lost to a Redis pause / connection kill',
  restartLease: 'lease lost while Redis restarted (persistent Redis)',
  unstoredRestart: 'completion not stored: Redis unreachable during a restart (store-failed)',
  unstoredConnection: 'completion not stored: Redis paused / connection killed (store-failed)',
  unstoredStall: 'completion not stored: the owner stalled past its lease (store-failed)',
  noPersistence: 'Redis restarted without persistence (lease or record lost)',
  backendKillLease: 'lease lost to a killed PostgreSQL backend (pg_terminate_backend)',
  backendKillUnstored: 'completion not stored: PostgreSQL backend killed (store-failed)',
  lockLease: 'lease lost while the records table was locked',
  lockUnstored: 'completion not stored: records table locked (store-failed)',
  unreachableLease: 'lease lost while PostgreSQL was unreachable',
  unreachableUnstored: 'completion not stored: PostgreSQL unreachable (store-failed)',
  partitionLease: 'lease lost to a partition of the owner (its connections blackholed, no reset)',
  partitionUnstored: 'completion not stored: the owner partitioned from Redis (store-failed)',
  latencyLease: 'lease lost to a latency spike (renewals late)',
  latencyUnstored: 'completion not stored: latency spike (store-failed)',
  masterKillLease: 'lease lost to a master SIGKILL and failover',
  masterKillUnstored: 'completion not stored: master SIGKILLed, failing over (store-failed)',
  failoverLostRecord: 'completed record lost in a failover (not yet replicated to the replica)',
  migrateLease: 'lease lost during a slot migration',
  migrateUnstored: 'completion not stored: slot migration (store-failed)',
  releasedUnreachable:
    "fn's error not kept, key freed: the store became unreachable inside fn (its transaction's connection lost)",
  unexplained: 'UNEXPLAINED',
} as const;
export type Cause = (typeof CAUSES)[keyof typeof CAUSES];

/**
 * What each server fault explains when its window overlaps an execution: the owner's lease
 * lost (`lease-lost`), or its completion not stored (`store-failed`). A Redis restart without
 * persistence is told apart where it is used. A partition of the subscriber connections alone
 * explains neither: commands pass, so no lease or completion may be lost to it.
 */
const SERVER_FAULT_CAUSES: Record<
  ServerFaultKind,
  { leaseLost: Cause; storeFailed: Cause } | undefined
> = {
  'client-kill': { leaseLost: CAUSES.connection, storeFailed: CAUSES.unstoredConnection },
  pause: { leaseLost: CAUSES.connection, storeFailed: CAUSES.unstoredConnection },
  restart: { leaseLost: CAUSES.restartLease, storeFailed: CAUSES.unstoredRestart },
  'backend-kill': {
    leaseLost: CAUSES.backendKillLease,
    storeFailed: CAUSES.backendKillUnstored,
  },
  lock: { leaseLost: CAUSES.lockLease, storeFailed: CAUSES.lockUnstored },
  unreachable: { leaseLost: CAUSES.unreachableLease, storeFailed: CAUSES.unreachableUnstored },
  partition: { leaseLost: CAUSES.partitionLease, storeFailed: CAUSES.partitionUnstored },
  'sub-partition': undefined,
  latency: { leaseLost: CAUSES.latencyLease, storeFailed: CAUSES.latencyUnstored },
  'master-kill': { leaseLost: CAUSES.masterKillLease, storeFailed: CAUSES.masterKillUnstored },
  migrate: { leaseLost: CAUSES.migrateLease, storeFailed: CAUSES.migrateUnstored },
};

const SERVER_NAMES: Record<StoreKind, string> = {
  redis: 'Redis',
  cluster: 'Redis Cluster',
  postgres: 'PostgreSQL',
};

export interface Explanation {
  readonly cause: Cause;
  /** What the evidence was, or why none fits. */
  readonly because: string;
}

export class Classifier {
  /**
   * Executions (`executionId`) some caller in the given pid received as a value: that
   * execution's caller settled.
   */
  private readonly settledByPid = new Map<number, Set<string>>();
  private readonly serverName: string;

  constructor(
    private readonly evidence: Evidence,
    private readonly persistence: boolean,
    store: StoreKind,
  ) {
    this.serverName = SERVER_NAMES[store];
    for (const caller of evidence.callers.values()) {
      if (caller.token === undefined) continue;
      getOrCreate(this.settledByPid, caller.pid, () => new Set<string>()).add(
        executionId(caller.key, caller.token),
      );
    }
  }

  /** Why `next` ran although `previous` (the key's execution before it) had run. */
  explain(previous: ExecutionRow, next: ExecutionRow): Explanation {
    const killed = this.killed(previous, next);
    if (killed !== undefined) return killed;
    const lost = firstAfter(this.evidence.leaseLost, previous);
    if (lost !== undefined) return this.leaseLost(previous, lost);
    const failed = firstAfter(this.evidence.storeFailed, previous);
    if (failed !== undefined) return this.storeFailed(previous, failed);
    const released = firstAfter(this.evidence.released, previous);
    if (released !== undefined) return this.released(previous, released);
    // The owner stalled while the next execution took over, and never said so (it was killed
    // before its completion was refused).
    const stall = this.stallDuring(previous, next.startedAt);
    if (stall !== undefined) {
      return {
        cause: CAUSES.stall,
        because: `pid ${stall.pid} stalled ${stall.to === undefined ? '' : `${Math.round(stall.to - stall.from)} ms `}from ${iso(stall.from)}, and the next execution began meanwhile`,
      };
    }
    const restart = this.evidence.serverFaults.find(
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
    // Replication is asynchronous: a master SIGKILLed right after storing a record may not have
    // sent it to the replica that takes over its slots.
    const slot = keySlot(recordKeyOf('chaos', previous.key));
    const failover = this.evidence.serverFaults.find(
      (fault) =>
        fault.kind === 'master-kill' &&
        fault.from >= previous.writtenAt &&
        fault.from <= next.startedAt &&
        fault.slots?.some(([from, to]) => slot >= from && slot <= to) === true,
    );
    if (failover !== undefined) {
      return {
        cause: CAUSES.failoverLostRecord,
        because: `completed, then the master of slot ${slot} was killed at ${iso(failover.from)} (${failover.detail})`,
      };
    }
    return {
      cause: CAUSES.unexplained,
      because: 'the previous execution completed with no fault, lease loss or store failure seen',
    };
  }

  private killed(previous: ExecutionRow, next: ExecutionRow): Explanation | undefined {
    const death = this.evidence.deaths.find((d) => d.pid === previous.pid);
    if (death === undefined || death.t < previous.writtenAt) return undefined;
    // A process that died after the next execution began (say, stalled first and was killed
    // later) did not cause it: the next one waited for the lease to end, which a death ends only
    // a good part of a lease later (renewals come every third of one).
    if ((death.dying?.t ?? death.t) > next.startedAt) return undefined;
    const { dying } = death;
    if (dying !== undefined && dying.key === previous.key && dying.token === previous.token) {
      return {
        cause: dying.phase === 'mid-fn' ? CAUSES.killedMidFn : CAUSES.killedAfterFn,
        because: `pid ${death.pid} said it was dying (${dying.phase}) holding this execution`,
      };
    }
    // The process died holding the key unless one of its callers received this execution's value.
    const id = executionId(previous.key, previous.token);
    if (this.settledByPid.get(previous.pid)?.has(id) === true) return undefined;
    return {
      cause: CAUSES.killedInFlight,
      because: `pid ${death.pid} was killed at ${iso(death.t)} before any caller there got this execution's value`,
    };
  }

  /** A stall of the execution's own process between its start and `until`. */
  private stallDuring(previous: ExecutionRow, until: number): Stall | undefined {
    return this.evidence.stalls.find(
      (s) =>
        s.pid === previous.pid && overlaps(s.from, s.to ?? Infinity, previous.startedAt, until),
    );
  }

  private leaseLost(previous: ExecutionRow, lost: ExecutorEventSeen): Explanation {
    const stall = this.stallDuring(previous, lost.t);
    if (stall !== undefined) {
      return {
        cause: CAUSES.stall,
        because: `pid ${stall.pid} stalled ${Math.round((stall.to ?? lost.t) - stall.from)} ms from ${iso(stall.from)}; lease-lost at ${iso(lost.t)}`,
      };
    }
    const fault = this.serverFaultDuring(previous, lost.t);
    if (fault === undefined) {
      return {
        cause: CAUSES.unexplained,
        because: `lease-lost at ${iso(lost.t)} with no stall or ${this.serverName} fault around it`,
      };
    }
    const causes = SERVER_FAULT_CAUSES[fault.kind];
    if (fault.kind !== 'restart' && causes !== undefined) {
      return {
        cause: causes.leaseLost,
        because: `${fault.kind} ${fault.detail}`,
      };
    }
    return {
      cause: this.persistence ? CAUSES.restartLease : CAUSES.noPersistence,
      because: `lease-lost at ${iso(lost.t)} after a restart (${fault.detail})`,
    };
  }

  private storeFailed(previous: ExecutionRow, failed: ExecutorEventSeen): Explanation {
    const fault = this.serverFaultDuring(previous, failed.t);
    if (fault === undefined) {
      // A stall past the lease: the completion is tried only when the process wakes, its
      // statements in flight time out at once, and the lease has no time left to retry in.
      const stall = this.stallDuring(previous, failed.t);
      if (stall !== undefined) {
        return {
          cause: CAUSES.unstoredStall,
          because: `store-failed at ${iso(failed.t)}; pid ${stall.pid} stalled from ${iso(stall.from)}`,
        };
      }
      return {
        cause: CAUSES.unexplained,
        because: `store-failed at ${iso(failed.t)} with no stall or ${this.serverName} fault around it`,
      };
    }
    return {
      cause: SERVER_FAULT_CAUSES[fault.kind]?.storeFailed ?? CAUSES.unexplained,
      because: `store-failed at ${iso(failed.t)} during ${fault.kind} ${fault.detail}`,
    };
  }

  /**
   * fn failed and the executor freed the key instead of keeping the error: the library's own
   * transient errors are never kept, and `transactional()` answers STORE_UNAVAILABLE for an error
   * of fn's on a transaction whose connection was lost. Explained by a server fault hitting the
   * owner's connections while fn ran; anything else is UNEXPLAINED (fn's own errors are kept).
   */
  private released(previous: ExecutionRow, released: ExecutorEventSeen): Explanation {
    const fault = this.serverFaultDuring(previous, released.t);
    if (fault === undefined) {
      return {
        cause: CAUSES.unexplained,
        because: `fn's error not kept at ${iso(released.t)} with no ${this.serverName} fault around it`,
      };
    }
    return {
      cause: CAUSES.releasedUnreachable,
      because: `key freed at ${iso(released.t)} during ${fault.kind} ${fault.detail}`,
    };
  }

  /**
   * The server fault whose window overlaps the execution and hits its process (or every one);
   * of several, the one that began last before the effect was seen.
   */
  private serverFaultDuring(previous: ExecutionRow, until: number): ServerFault | undefined {
    let latest: ServerFault | undefined;
    for (const fault of this.evidence.serverFaults) {
      if (fault.pid !== undefined && fault.pid !== previous.pid) continue;
      // A fault that cannot cost a lease or a completion (commands passed) explains nothing.
      if (SERVER_FAULT_CAUSES[fault.kind] === undefined) continue;
      if (!overlaps(fault.from, fault.to, previous.startedAt, until)) continue;
      if (latest === undefined || fault.from > latest.from) latest = fault;
    }
    return latest;
  }
}

/** The first event of the execution's process and key seen after its ledger row. */
export function firstAfter(
  events: readonly ExecutorEventSeen[],
  row: ExecutionRow,
): ExecutorEventSeen | undefined {
  return events.find((e) => e.pid === row.pid && e.key === row.key && e.t >= row.writtenAt);
}

/** One execution of one key: fencing tokens are unique per key, not across keys. */
export function executionId(key: string, token: number): string {
  return `${key}#${token}`;
}

function overlaps(aFrom: number, aTo: number, bFrom: number, bTo: number): boolean {
  return aFrom <= bTo && bFrom <= aTo;
}

function iso(t: number): string {
  return new Date(t).toISOString().slice(11, 23);
}
