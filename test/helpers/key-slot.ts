/**
 * Redis Cluster hash slots, computed independently of the library (CLUSTER KEYSLOT needs a
 * cluster-enabled server): CRC16/XMODEM of the key's hash tag, or of the whole key, mod 16384.
 */

/** CRC16/XMODEM (polynomial 0x1021, initial value 0), the checksum Redis Cluster uses. */
export function crc16Xmodem(bytes: Uint8Array): number {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte << 8;
    for (let bit = 0; bit < 8; bit++) {
      crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff;
    }
  }
  return crc;
}

/**
 * The part of `key` Redis hashes: the bytes between the first `{` and the first `}` after it,
 * when that part is not empty; otherwise the whole key.
 */
export function hashTagOf(key: string | Uint8Array): Uint8Array {
  const bytes = typeof key === 'string' ? Buffer.from(key, 'utf8') : Buffer.from(key);
  const open = bytes.indexOf('{');
  if (open < 0) return bytes;
  const close = bytes.indexOf('}', open + 1);
  if (close < 0 || close === open + 1) return bytes;
  return bytes.subarray(open + 1, close);
}

/** The Redis Cluster slot of `key`. */
export function clusterSlot(key: string | Uint8Array): number {
  return crc16Xmodem(hashTagOf(key)) % 16384;
}
