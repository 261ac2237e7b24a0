/**
 * Every Redis name the store builds for one idempotency key, in one place:
 *
 * ```
 * <namespace>:{<key>}             the record key: the lease token while fn runs, the record after
 * <namespace>:{<key>}:done        the channel completions, releases and renewals publish on
 * <namespace>:{<key>}:fence       the fencing counter
 * <namespace>:{<key>}:replicated  the marker a replica wait writes after the record
 * ```
 *
 * The braces are a Redis Cluster hash tag holding exactly the escaped key, so all four live in
 * one slot: a script may touch the record and its fence counter, and SPUBLISH on the channel
 * from the record's script reaches the record's shard.
 */

/**
 * `<namespace>:{<key>}`, each part escaped so that `%`, `{` and `}` cannot occur raw. Then the
 * first `{` always opens the key, distinct (namespace, key) pairs give distinct strings
 * ("a:b" + "c" is `a:b:{c}`, "a" + "b:c" is `a:{b:c}`), and the braces are a hash tag holding
 * exactly the key.
 */
export function recordKeyOf(namespace: string, key: string): string {
  return `${escapeKeyPart(namespace)}:{${escapeKeyPart(key)}}`;
}

/** The pub/sub channel of a record key. */
export function channelOf(recordKey: string): string {
  return recordKey + CHANNEL_SUFFIX;
}

/** The fencing counter of a record key. */
export function fenceKeyOf(recordKey: string): string {
  return recordKey + FENCE_SUFFIX;
}

/** The short-lived marker a replica wait writes after the record (see replica-wait.ts). */
export function replicaMarkerOf(recordKey: string): string {
  return recordKey + REPLICA_MARKER_SUFFIX;
}

export const CHANNEL_SUFFIX = ':done';
export const FENCE_SUFFIX = ':fence';
export const REPLICA_MARKER_SUFFIX = ':replicated';

function escapeKeyPart(part: string): string {
  // Most keys hold none of the three: one scan, no copy.
  if (part.indexOf('%') < 0 && part.indexOf('{') < 0 && part.indexOf('}') < 0) return part;
  return part.replace(/[%{}]/g, (char) => (char === '%' ? '%25' : char === '{' ? '%7B' : '%7D'));
}
