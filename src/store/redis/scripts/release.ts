import type { PublishCommand, ScriptDefinition } from '../define-script.js';

/**
 * release — give up our lease without a record (an uncached error) and tell the waiters.
 *
 * KEYS[1]  record key
 * KEYS[2]  the key's channel
 * ARGV[1]  our lease token
 * ARGV[2]  encoded release notice (carries the uncached error to current waiters)
 * ARGV[3]  publish command: PUBLISH or SPUBLISH
 *
 * Returns: 1 released and published; 0 the lease was no longer ours (nothing changed).
 */
export const releaseLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call(ARGV[3], KEYS[2], ARGV[2])
return 1
`;

/** Replies of {@link releaseScript}. */
export const ReleaseReply = { LEASE_LOST: 0, RELEASED: 1 } as const;

/** release: KEYS record key, channel; ARGV token, notice, publish command. */
export const releaseScript: ScriptDefinition<
  [recordKey: string, channel: string],
  [token: string, notice: Uint8Array, publish: PublishCommand],
  (typeof ReleaseReply)[keyof typeof ReleaseReply]
> = { lua: releaseLua, keys: 2 };
