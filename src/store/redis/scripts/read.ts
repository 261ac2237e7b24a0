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
