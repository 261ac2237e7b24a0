import { randomFillSync } from 'node:crypto';

/** Random bytes per token, after its 6-byte claim time. */
const RANDOM_BYTES = 10;
const POOL_TOKENS = 256;
const pool = Buffer.allocUnsafe(RANDOM_BYTES * POOL_TOKENS);
let offset = pool.length;
/** The claim time in ms fits 12 hex digits until the year 10889. */
const TIME_DIGITS = 12;

/**
 * A fresh lease token, 32 lowercase hex digits (the shape of redlock's lock values): the claim
 * time in ms since the epoch (12 digits), then 10 cryptographically random bytes. The time lets
 * operators see how long a lease has been held (`idempotent-executor stats`: Redis keeps no
 * claim time, and renewals reset the TTL); the 80 random bits keep every token unguessable and
 * unique. Random bytes are drawn 2.5 KiB at a time: a system call per claim cost more than the
 * rest of a claim's JavaScript.
 */
export function newLeaseToken(): string {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  const random = pool.toString('hex', offset, offset + RANDOM_BYTES);
  offset += RANDOM_BYTES;
  return Date.now().toString(16).padStart(TIME_DIGITS, '0') + random;
}

/** When the lease `token` was claimed (wall clock), or undefined for a token of another shape. */
export function claimedAtOf(token: string): Date | undefined {
  if (token.length !== 32) return undefined;
  const ms = Number.parseInt(token.slice(0, TIME_DIGITS), 16);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}
