import { randomFillSync } from 'node:crypto';

/** Random bytes per token, after its 6-byte claim time. */
const RANDOM_BYTES = 10;
const POOL_TOKENS = 256;
const RANDOM_DIGITS = 2 * RANDOM_BYTES;
const pool = Buffer.allocUnsafe(RANDOM_BYTES * POOL_TOKENS);
/** The pool as hex, drawn from by slices: one conversion per 256 tokens. */
let poolHex = '';
let offset = 0;
/** The claim time in ms fits 12 hex digits until the year 10889. */
const TIME_DIGITS = 12;
/** The time part of the last token, kept while the clock stays on the same millisecond. */
let lastMs = -1;
let lastTime = '';

/**
 * A fresh lease token, 32 lowercase hex digits (the shape of redlock's lock values): the claim
 * time in ms since the epoch (12 digits), then 10 cryptographically random bytes. The time lets
 * operators see how long a lease has been held (`idempotent-executor stats`: Redis keeps no
 * claim time, and renewals reset the TTL); the 80 random bits keep every token unguessable and
 * unique. Random bytes are drawn 2.5 KiB at a time and turned into hex at once: a system call
 * or a conversion per claim cost more than the rest of a claim's JavaScript.
 */
export function newLeaseToken(): string {
  if (offset === poolHex.length) {
    randomFillSync(pool);
    poolHex = pool.toString('hex');
    offset = 0;
  }
  const random = poolHex.slice(offset, offset + RANDOM_DIGITS);
  offset += RANDOM_DIGITS;
  const now = Date.now();
  if (now !== lastMs) {
    lastMs = now;
    lastTime = now.toString(16).padStart(TIME_DIGITS, '0');
  }
  return lastTime + random;
}

/** When the lease `token` was claimed (wall clock), or undefined for a token of another shape. */
export function claimedAtOf(token: string): Date | undefined {
  if (token.length !== 32) return undefined;
  const ms = Number.parseInt(token.slice(0, TIME_DIGITS), 16);
  return Number.isFinite(ms) ? new Date(ms) : undefined;
}
