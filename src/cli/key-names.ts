import { CHANNEL_SUFFIX, recordKeyOf } from '../store/redis/key-layout.js';

/**
 * The patterns and reverse look-ups the tool needs, derived from the Redis store's own key
 * layout (src/store/redis/key-layout.ts), so they cannot drift from what the store writes.
 */

/** The record key's prefix for `namespace`: `<escaped namespace>:{`. */
export function namespacePrefix(namespace: string): string {
  const probe = recordKeyOf(namespace, 'k');
  return probe.slice(0, probe.length - 'k}'.length);
}

/** A SCAN MATCH pattern of the keys of `namespace` whose (unescaped) key matches `keyGlob`. */
export function recordKeyPattern(namespace: string, keyGlob = '*'): string {
  return `${escapeGlob(namespacePrefix(namespace))}${escapeKeyGlob(keyGlob)}}`;
}

/** A SCAN MATCH pattern of every key the executor writes under `namespace` (fence counters too). */
export function namespacePattern(namespace: string): string {
  return `${escapeGlob(namespacePrefix(namespace))}*`;
}

/** The PSUBSCRIBE pattern of every key channel of `namespace`. */
export function channelPattern(namespace: string): string {
  return `${escapeGlob(namespacePrefix(namespace))}*}${CHANNEL_SUFFIX}`;
}

/**
 * The idempotency key stored under `redisKey`, or undefined when `redisKey` is not a record key
 * of `namespace` (a fence counter, a channel, someone else's key).
 */
export function idempotencyKeyOf(namespace: string, redisKey: string): string | undefined {
  const prefix = namespacePrefix(namespace);
  if (!redisKey.startsWith(prefix) || !redisKey.endsWith('}')) return undefined;
  const escaped = redisKey.slice(prefix.length, -1);
  // An escaped key holds no raw brace: `ns:{a}:fence` and the like are not records.
  if (escaped.length === 0 || /[{}]/.test(escaped)) return undefined;
  return unescapeKeyPart(escaped);
}

/** The idempotency key a channel of `namespace` belongs to, or undefined. */
export function idempotencyKeyOfChannel(namespace: string, channel: string): string | undefined {
  if (!channel.endsWith(CHANNEL_SUFFIX)) return undefined;
  return idempotencyKeyOf(namespace, channel.slice(0, -CHANNEL_SUFFIX.length));
}

/** Inverse of the executor's escaping: `%25` → `%`, `%7B` → `{`, `%7D` → `}`. */
export function unescapeKeyPart(part: string): string {
  return part.replace(/%(25|7B|7D)/g, (_, code: string) =>
    code === '25' ? '%' : code === '7B' ? '{' : '}',
  );
}

/** Makes a literal string match only itself in a Redis glob. */
function escapeGlob(text: string): string {
  return text.replace(/[*?[\]\\]/g, (char) => `\\${char}`);
}

/** A glob over unescaped keys as a glob over escaped ones: its literal `%{}` escaped as in keys. */
function escapeKeyGlob(glob: string): string {
  return glob.replace(/[%{}]/g, (char) => (char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'));
}
