import type { ScriptDefinition } from '../define-script.js';

/**
 * fence — hand the lease holder a fencing token larger than any before it for this key.
 *
 * KEYS[1]  record key
 * KEYS[2]  the key's fence counter
 * ARGV[1]  our lease token
 * ARGV[2]  how long the counter is kept, ms
 *
 * Returns: the token (> 0); -1 the lease is no longer ours; -2 the counter holds something
 * that is not a number (not written by this library: reported as unreadable data, not as an
 * outage).
 * The counter starts from the server's clock in microseconds, so tokens keep growing even
 * after the counter itself expired; after that it counts up by one per call.
 */
export const fenceLua = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return -1
end
local now = redis.call('TIME')
local token = tonumber(now[1]) * 1000000 + tonumber(now[2])
local kind = redis.call('TYPE', KEYS[2])['ok']
local last = 0
if kind == 'string' then
  last = tonumber(redis.call('GET', KEYS[2]))
  if last == nil then
    return -2
  end
elseif kind ~= 'none' then
  return -2
end
if last >= token then
  token = last + 1
end
redis.call('SET', KEYS[2], string.format('%d', token), 'PX', ARGV[2])
return token
`;

/** Replies of {@link fenceScript} below 1 (a reply of 1 or more is the token). */
export const FenceReply = { LEASE_LOST: -1, NOT_A_NUMBER: -2 } as const;

/** fence: KEYS record key, fence counter; ARGV token, counter retention ms. */
export const fenceScript: ScriptDefinition<
  [recordKey: string, fenceKey: string],
  [token: string, fenceTtlMs: number],
  number
> = { lua: fenceLua, keys: 2 };
