/**
 * Bob Jenkins' lookup3 `hashlittle`, the checksum HDF5 uses for its v2
 * metadata structures (H5_checksum_lookup3 with initval 0 by default).
 */
export function lookup3(key: Uint8Array, initval = 0): number {
  let length = key.length;
  let a = (0xdeadbeef + length + initval) >>> 0;
  let b = a;
  let c = a;
  const rot = (x: number, k: number) => ((x << k) | (x >>> (32 - k))) >>> 0;
  let o = 0;
  while (length > 12) {
    a = (a + (key[o]! | (key[o + 1]! << 8) | (key[o + 2]! << 16) | (key[o + 3]! << 24))) >>> 0;
    b = (b + (key[o + 4]! | (key[o + 5]! << 8) | (key[o + 6]! << 16) | (key[o + 7]! << 24))) >>> 0;
    c = (c + (key[o + 8]! | (key[o + 9]! << 8) | (key[o + 10]! << 16) | (key[o + 11]! << 24))) >>> 0;
    // mix(a, b, c)
    a = (a - c) >>> 0; a ^= rot(c, 4); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 6); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 8); b = (b + a) >>> 0;
    a = (a - c) >>> 0; a ^= rot(c, 16); c = (c + b) >>> 0;
    b = (b - a) >>> 0; b ^= rot(a, 19); a = (a + c) >>> 0;
    c = (c - b) >>> 0; c ^= rot(b, 4); b = (b + a) >>> 0;
    length -= 12;
    o += 12;
  }
  // the last block: up to 12 bytes, added byte by byte (fallthrough switch)
  const tail = [0, 0, 0];
  for (let i = 0; i < length; i++) tail[Math.floor(i / 4)]! += key[o + i]! << (8 * (i % 4));
  if (length === 0) return c >>> 0;
  a = (a + (tail[0]! >>> 0)) >>> 0;
  b = (b + (tail[1]! >>> 0)) >>> 0;
  c = (c + (tail[2]! >>> 0)) >>> 0;
  // final(a, b, c)
  c ^= b; c = (c - rot(b, 14)) >>> 0;
  a ^= c; a = (a - rot(c, 11)) >>> 0;
  b ^= a; b = (b - rot(a, 25)) >>> 0;
  c ^= b; c = (c - rot(b, 16)) >>> 0;
  a ^= c; a = (a - rot(c, 4)) >>> 0;
  b ^= a; b = (b - rot(a, 14)) >>> 0;
  c ^= b; c = (c - rot(b, 24)) >>> 0;
  return c >>> 0;
}
