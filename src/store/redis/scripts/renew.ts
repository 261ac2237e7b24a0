import type { PublishCommand, ScriptDefinition } from '../define-script.js';

/**
 * renew — push our lease's expiry out and tell the waiters, so they need not ask Redis again.
 *
 * KEYS[1]  record key
 * KEYS[2]  the key's channel
 * ARGV[1]  our lease token
 * ARGV[2]  new lease duration, ms
 * ARGV[3]  encoded renewal notice
 * ARGV[4]  publish command: PUBLISH or SPUBLISH
 *
 * Returns: 1 renewed and published; 0 the lease is no longer ours (nothing changed).
 */
export const renewLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call(ARGV[4], KEYS[2], ARGV[3])
return 1
`;

/** Replies of {@link renewScript}. */
export const RenewReply = { LEASE_LOST: 0, RENEWED: 1 } as const;

/** renew: KEYS record key, channel; ARGV token, lease ms, notice, publish command. */
export const renewScript: ScriptDefinition<
  [recordKey: string, channel: string],
  [token: string, leaseMs: number, notice: Uint8Array, publish: PublishCommand],
  (typeof RenewReply)[keyof typeof RenewReply]
> = { lua: renewLua, keys: 2 };
