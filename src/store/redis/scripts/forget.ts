import type { ScriptDefinition } from '../define-script.js';

/**
 * forget — delete a finished (or unreadable) entry, never a running lease.
 *
 * KEYS[1]  record key
 *
 * Returns: 0 absent; 1 deleted; 2 a lease is held (left alone).
 * A lease is a 32-character lowercase hex value with an expiry; anything else under the key
 * (a record, bytes that do not decode, another Redis type) is deleted.
 */
export const forgetLua = `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return 0
end
if kind == 'string' then
  local value = redis.call('GET', KEYS[1])
  if #value == 32 and not string.find(value, '[^0-9a-f]') and redis.call('PTTL', KEYS[1]) > 0 then
    return 2
  end
end
redis.call('DEL', KEYS[1])
return 1
`;

/** Replies of {@link forgetScript}. */
export const ForgetReply = { ABSENT: 0, DELETED: 1, RUNNING: 2 } as const;

/** forget: KEYS record key. */
export const forgetScript: ScriptDefinition<
  [recordKey: string],
  [],
  (typeof ForgetReply)[keyof typeof ForgetReply]
> = { lua: forgetLua, keys: 1 };
