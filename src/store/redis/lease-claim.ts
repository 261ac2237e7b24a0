import type { Cluster, Redis } from 'ioredis';
import Redlock, { ExecutionError, Lock, ResourceLockedError } from 'redlock';
import { newLeaseToken } from '../lease-token.js';
import { claimLua } from './scripts/claim.js';

/**
 * Takes leases with redlock on the record key itself. Returns the lock, or null when the key is
 * held (by a lease, a record or anything else); rejects with the underlying error when Redis
 * did not answer.
 */
export class LeaseClaimer {
  private readonly redlock: SingleClientRedlock;

  constructor(connection: Redis | Cluster) {
    const client = new ClaimingClient(connection);
    this.redlock = new SingleClientRedlock(
      [client as unknown as Redis],
      { retryCount: 0 },
      {
        acquireScript: claimLua,
      },
    );
    client.claimSha = this.redlock.scripts.acquireScript.hash;
  }

  async claim(key: string, leaseMs: number): Promise<Lock | null> {
    try {
      return await this.redlock.acquire([key], leaseMs);
    } catch (err) {
      const failure = await voteFailure(err);
      if (failure === REFUSED) return null;
      throw failure;
    }
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
 * Redlock without its clean-up trip: `acquire()` follows a refused attempt with a release on
 * every server, to clear a partial lock left on a minority of a multi-server quorum. The store
 * locks through one client (one server, or the one Cluster node owning the key's slot), where
 * no minority exists, and every duplicate call would pay that extra round trip.
 */
class SingleClientRedlock extends Redlock {
  override async acquire(resources: string[], duration: number): Promise<Lock> {
    const start = Date.now();
    const value = newLeaseToken();
    const { attempts } = await (this as unknown as RedlockInternals)._execute(
      this.scripts.acquireScript,
      resources,
      [value, duration],
      undefined,
    );
    return new Lock(this, resources, value, attempts, start + duration - driftOf(duration));
  }
}

/**
 * The Redis client redlock talks to. Its acquire script on one key (see scripts/claim.ts) is
 * exactly `SET key token NX PX ms`, so that command is sent in its place: Redis runs a plain
 * SET about five times faster than a script call, and the claim is half of a fresh run.
 * Anything else is passed through untouched.
 */
class ClaimingClient {
  claimSha = '';

  constructor(private readonly connection: Redis | Cluster) {}

  evalsha(sha: string, numberOfKeys: number, parts: (string | number)[]): Promise<unknown> {
    if (sha === this.claimSha && numberOfKeys === 1) return this.claim(parts);
    return this.connection.evalsha(sha, numberOfKeys, ...parts);
  }

  eval(script: string, numberOfKeys: number, parts: (string | number)[]): Promise<unknown> {
    if (script === claimLua && numberOfKeys === 1) return this.claim(parts);
    return this.connection.eval(script, numberOfKeys, ...parts);
  }

  private claim(parts: (string | number)[]): Promise<number> {
    const [key, token, leaseMs] = parts as [string, string, number];
    return this.connection
      .set(key, token, 'PX', leaseMs, 'NX')
      .then((reply) => (reply === 'OK' ? 1 : 0));
  }
}

interface RedlockInternals {
  _execute(
    script: { value: string; hash: string },
    keys: string[],
    args: (string | number)[],
    settings: undefined,
  ): Promise<{ attempts: Lock['attempts'] }>;
}

const REFUSED = Symbol('refused');

/**
 * Why redlock failed: {@link REFUSED} when the key is held (Redis answered "no"), otherwise
 * the error behind the failed vote (a connection error, a timeout), so callers see the cause.
 */
async function voteFailure(err: unknown): Promise<typeof REFUSED | unknown> {
  if (!(err instanceof ExecutionError) || err.attempts.length === 0) return err;
  const stats = await err.attempts[err.attempts.length - 1];
  if (stats === undefined) return err;
  for (const reason of stats.votesAgainst.values()) {
    if (!(reason instanceof ResourceLockedError)) return reason;
  }
  return stats.votesAgainst.size > 0 ? REFUSED : err;
}
