import type { Cluster, Redis } from 'ioredis';
import { defineScript } from '../store/redis/define-script.js';

/**
 * force-release — end a running lease on an operator's word (`forget --force`), and tell the
 * waiters at once so they claim the key again instead of waiting out the lease.
 *
 * KEYS[1]  record key
 * KEYS[2]  the key's channel (a KEY so Redis Cluster routes SPUBLISH to the record's slot)
 * ARGV[1]  the lease token the operator saw (compared, so a newer lease or a record written
 *          since is never deleted)
 * ARGV[2]  encoded release notice without an outcome
 * ARGV[3]  publish command: PUBLISH (one server) or SPUBLISH (cluster)
 *
 * Returns: 1 deleted and published; 0 the key no longer holds that lease (nothing changed).
 *
 * The owner, if still alive, finds its token gone at its next renewal or at completion: its
 * `ctx.signal` aborts and it gets `IDEMPOTENCY_LEASE_LOST`; its outcome is not stored.
 */
export const forceReleaseLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call(ARGV[3], KEYS[2], ARGV[2])
return 1
`;

export const ForceReleaseReply = { RELEASED: 1, CHANGED: 0 } as const;

export function forceReleaseCaller(client: Redis | Cluster) {
  return defineScript<[string, string], [string, Uint8Array, 'PUBLISH' | 'SPUBLISH'], number>(
    client,
    { lua: forceReleaseLua, keys: 2 },
  );
}
