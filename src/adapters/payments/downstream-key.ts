import { createHash } from 'node:crypto';

/**
 * The downstream idempotency key of (scope, key): `ie_` and 40 hex digits of a SHA-256 — within
 * every common provider's limits (Adyen 64, PayPal 108, Stripe 255 characters).
 *
 * The hashed text must tell every (scope, key) pair apart: two orders sharing a provider key
 * would get one charge between them. Version 0.1 hashed `scope NUL key`, which is ambiguous only
 * when a part holds a NUL itself (`('a\0b', 'c')` and `('a', 'b\0c')`). That text is kept for
 * every pair without a NUL, so an order whose first attempt timed out before an upgrade is
 * retried after it under the same provider key (a new key there could charge it twice). Pairs
 * with a NUL hash `NUL NUL <scope length>:<scope><key>` instead: it never has exactly one NUL,
 * so it never equals the first form, and the length prefix makes it unambiguous.
 *
 * Both parts must be well-formed Unicode (checked by the caller), so their UTF-8 bytes, which are
 * hashed, are as distinct as the strings.
 */
export function downstreamKeyOf(scope: string, key: string): string {
  const text =
    scope.includes('\0') || key.includes('\0')
      ? `\0\0${scope.length}:${scope}${key}`
      : `${scope}\0${key}`;
  return `ie_${createHash('sha256').update(text).digest('hex').slice(0, 40)}`;
}
