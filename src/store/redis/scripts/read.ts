import type { ScriptDefinition } from '../define-script.js';

/**
 * read — what a record key holds, with its remaining time to live, in one round trip.
 *
 * KEYS[1]  record key
 *
 * Returns: {0} absent; {1, value, pttl} a string (lease token or encoded record);
 *          {2} the key holds another Redis type (not ours to read).
 */
export const readLua = `
local kind = redis.call('TYPE', KEYS[1])['ok']
if kind == 'none' then
  return {0}
end
if kind ~= 'string' then
  return {2}
end
return {1, redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}
`;

/** The first element of {@link readScript}'s reply. */
export const ReadReply = { ABSENT: 0, STRING: 1, OTHER_TYPE: 2 } as const;

/** read: KEYS record key. */
export const readScript: ScriptDefinition<
  [recordKey: string],
  [],
  | [typeof ReadReply.ABSENT]
  | [typeof ReadReply.STRING, Buffer, number]
  | [typeof ReadReply.OTHER_TYPE]
> = { lua: readLua, keys: 1 };
