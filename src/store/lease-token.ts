import { randomFillSync } from 'node:crypto';

const TOKEN_BYTES = 16;
const POOL_TOKENS = 256;
const pool = Buffer.allocUnsafe(TOKEN_BYTES * POOL_TOKENS);
let offset = pool.length;

/**
 * A fresh lease token: 16 cryptographically random bytes in lowercase hex (the shape of
 * redlock's lock values). Random bytes are drawn 4 KiB at a time: a system call per claim cost
 * more than the rest of a claim's JavaScript.
 */
export function newLeaseToken(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const token = pool.toString('hex', offset, offset + TOKEN_BYTES);
  offset += TOKEN_BYTES;
  return token;
}
