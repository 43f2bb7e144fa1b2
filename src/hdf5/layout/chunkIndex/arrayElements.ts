import type { Cursor } from "../reader.ts";

/** One decoded fixed/extensible array element. */
export interface ArrayElement {
  address: number | null;
  size: number;
  filterMask: number;
}

/**
 * Decodes `count` chunk elements: an address for unfiltered chunks (client
 * id 0), or address + chunk size + filter mask for filtered ones (client id
 * 1). The chunk size width is taken from the array's element size rather than
 * recomputed from the chunk size (HDF5 < 2.0 derives it from the chunk byte
 * count, layout version 5 uses a fixed width), so both encodings decode.
 */
export function decodeElements(
  c: Cursor,
  count: number,
  clientId: number,
  entrySize: number,
  chunkBytes: number,
): ArrayElement[] {
  const O = c.ctx.offsetSize;
  const out: ArrayElement[] = [];
  if (clientId === 0) {
    if (entrySize !== O) c.fail(`element size ${entrySize} for unfiltered chunks, expected ${O}`);
    for (let i = 0; i < count; i++) out.push({ address: c.offset(), size: chunkBytes, filterMask: 0 });
    return out;
  }
  if (clientId !== 1) c.fail(`unknown client id ${clientId}`);
  const sizeLen = entrySize - O - 4;
  if (sizeLen < 1 || sizeLen > 8) c.fail(`element size ${entrySize} for filtered chunks is invalid`);
  for (let i = 0; i < count; i++) {
    const address = c.offset();
    const size = c.uvar(sizeLen);
    const filterMask = c.u32();
    out.push({ address, size, filterMask });
  }
  return out;
}

/** Bit `i` of a page-init bitmap; HDF5 numbers bits from the most significant (H5VM_bit_get). */
export function bitSet(bitmap: Uint8Array, i: number): boolean {
  return ((bitmap[i >> 3] ?? 0) & (0x80 >> (i & 7))) !== 0;
}
