import type { Cluster, Redis } from 'ioredis';
import Redlock, { Lock } from 'redlock';

/**
 * Takes leases with redlock on the record key itself. Returns the lock, or null when the key is
 * held (by a lease, a record or anything else); rejects with the underlying error when Redis
 * did not answer.
 */
export class LeaseClaimer {
  private readonly redlock: SingleClientRedlock;

  constructor(connection: Redis | Cluster) {
    this.redlock = new SingleClientRedlock(connection);
  }

  /** Claims `key` with `token`, a fresh lease token (see lease-token.ts). */
  claim(key: string, leaseMs: number, token: string): Promise<Lock | null> {
    return this.redlock.tryAcquire(key, leaseMs, token);
  }

  /**
   * The lock of a claim whose reply said "held" but whose command took the lease after all: sent
   * again by the client after a reconnect, the second copy found the key holding the first's token.
   * Its expiry counts from `start`, before the first copy was sent.
   */
  adopt(key: string, token: string, leaseMs: number, start: number): Lock {
    return this.redlock.lockOf(key, token, leaseMs, start);
  }
}

/**
 * How much earlier than Redis a holder counts its lease as gone: redlock's default allowance for
 * clock drift (1 %) plus 2 ms for Redis's expiry precision.
 */
export function driftOf(leaseMs: number): number {
  return Math.round(0.01 * leaseMs) + 2;
}

/**
 * Redlock's acquire for one resource on one client, answering "held" with null.
 *
 * Redlock's own `acquire()` on a quorum of servers runs its acquire script on each, counts votes,
 * and on a refusal releases the key everywhere (to clear a partial lock left on a minority) and
 * rejects with an `ExecutionError` built around a `ResourceLockedError` per server. The store
 * locks through one client (one server, or the Cluster node owning the key's slot): there is no
 * minority, the vote is the one reply, and every duplicate call — each replay — would pay the
 * release round trip and the two stack-capturing errors (measured: 15 % of a replay's CPU). So
 * the one vote is taken here, with the command redlock's script amounts to on one key
 * (`SET key token NX PX ms`, which Redis also runs about five times faster than a script), and
 * the result is redlock's `Lock`: its random token, its expiry less its clock-drift allowance.
 */
class SingleClientRedlock extends Redlock {
  constructor(private readonly connection: Redis | Cluster) {
    super([connection as Redis], { retryCount: 0 });
  }

  async tryAcquire(key: string, duration: number, value: string): Promise<Lock | null> {
    const start = Date.now();
    const reply = await this.connection.set(key, value, 'PX', duration, 'NX');
    return reply === 'OK' ? this.lockOf(key, value, duration, start) : null;
  }

  lockOf(key: string, value: string, duration: number, start: number): Lock {
    return new Lock(this, [key], value, [], start + duration - driftOf(duration));
  }
}
