/**
 * claim — take the lease on a record key if nothing is stored there (redlock's acquire script).
 *
 * KEYS[1]  record key
 * ARGV[1]  lease token (redlock's random value)
 * ARGV[2]  lease duration, ms
 *
 * Returns: 1 the lease was taken; 0 the key holds something (a lease, a record, anything else).
 * One SET NX PX instead of redlock's EXISTS-then-SET loop: the same answer in one command.
 */
export const claimLua = `
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return 1
end
return 0
`;
