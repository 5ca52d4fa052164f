/**
 * CRC-32 (IEEE 802.3, the zip checksum). Checking it turns a flipped byte inside a `.pth`
 * tensor into a clear error instead of silently wrong weights.
 * @module
 */

let table: Uint32Array | undefined;

/** Builds (once) the byte-wise lookup table of the reflected polynomial 0xEDB88320. */
function crcTable(): Uint32Array {
  if (table) return table;
  table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/**
 * Computes the CRC-32 of `bytes`.
 * @param bytes the data
 * @returns the checksum as an unsigned 32-bit integer
 */
export function crc32(bytes: Uint8Array): number {
  const t = crcTable();
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = t[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
