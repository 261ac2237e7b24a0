import type { PublishCommand, ScriptDefinition } from '../define-script.js';

/**
 * complete — turn our lease into the finished record and announce it, atomically.
 *
 * KEYS[1]  record key
 * KEYS[2]  the key's channel (a KEY so Redis Cluster routes SPUBLISH to the record's slot)
 * ARGV[1]  our lease token
 * ARGV[2]  encoded record
 * ARGV[3]  retention, ms
 * ARGV[4]  publish command: PUBLISH (one server) or SPUBLISH (cluster)
 *
 * Returns: 1 stored and published; 0 the lease is no longer ours (nothing stored).
 */
export const completeLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
redis.call(ARGV[4], KEYS[2], ARGV[2])
return 1
`;

/** Replies of {@link completeScript}. */
export const CompleteReply = { LEASE_LOST: 0, STORED: 1 } as const;

/** complete: KEYS record key, channel; ARGV token, record, retention ms, publish command. */
export const completeScript: ScriptDefinition<
  [recordKey: string, channel: string],
  [token: string, record: Uint8Array, ttlMs: number, publish: PublishCommand],
  (typeof CompleteReply)[keyof typeof CompleteReply]
> = { lua: completeLua, keys: 2 };
