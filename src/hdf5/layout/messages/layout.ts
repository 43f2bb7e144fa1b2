import { Hdf5UnsupportedError } from "../errors.ts";
import { Cursor, product, type SizeContext } from "../reader.ts";
import type { ChunkIndexType, ChunkedLayout } from "../types.ts";

/** Decoded layout message; contiguous v1/v2 size is filled in later from the dataspace. */
export type DecodedLayout =
  | { kind: "compact"; data: Uint8Array }
  /** size null = "compute from dataspace" (layout v1/v2). */
  | { kind: "contiguous"; address: number | null; size: number | null }
  | ChunkedLayout
  | { kind: "virtual" };

const INDEX_TYPES: Record<number, ChunkIndexType> = {
  1: "single-chunk",
  2: "implicit",
  3: "fixed-array",
  4: "extensible-array",
  5: "btree-v2",
};

/**
 * Data layout message (0x0008), versions 1-5. Version 5 (HDF5 2.0) has the
 * version 4 wire format; it only changes how wide filtered chunk sizes are in
 * the chunk index, which the index readers take from the index's own
 * element/record sizes.
 */
export function decodeLayout(data: Uint8Array, ctx: SizeContext, position: number): DecodedLayout {
  const c = new Cursor(data, ctx, "data layout message", position);
  const version = c.u8();
  if (version < 1 || version > 5) c.fail(`unsupported version ${version}`);
  if (version < 3) return decodeOld(c, version);
  const cls = c.u8();
  switch (cls) {
    case 0: {
      const size = c.u16();
      return { kind: "compact", data: c.bytes(size).slice() };
    }
    case 1: {
      const address = c.offset();
      const size = c.length();
      return { kind: "contiguous", address, size };
    }
    case 2:
      return version === 3 ? decodeChunkedV3(c) : decodeChunkedV4(c, version);
    case 3:
      if (version < 4) c.fail("virtual layout requires layout message version 4");
      return { kind: "virtual" };
    default:
      return c.fail(`unknown layout class ${cls}`);
  }
}

function chunked(
  c: Cursor,
  dims: number[],
  indexType: ChunkIndexType,
  indexAddress: number | null,
  version: number,
  flags: number,
): ChunkedLayout {
  if (dims.length < 2) c.fail(`chunked layout needs at least 2 dimensions (including element size), got ${dims.length}`);
  if (dims.some((d) => d <= 0)) c.fail(`chunk dimension must be positive: ${dims.join("x")}`);
  // The last "dimension" is the element size in bytes, not a dataset dimension.
  const chunkShape = dims.slice(0, -1);
  const layoutElementSize = dims[dims.length - 1]!;
  return {
    kind: "chunked",
    chunkShape,
    indexType,
    indexAddress,
    chunkBytes: product(chunkShape) * layoutElementSize,
    layoutElementSize,
    layoutVersion: version,
    flags,
  };
}

/** Versions 1 and 2 (HDF5 1.4 and earlier era). */
function decodeOld(c: Cursor, version: number): DecodedLayout {
  const ndims = c.u8();
  const cls = c.u8();
  c.skip(5);
  if (ndims === 0) c.fail("dimensionality 0");
  let address: number | null = null;
  if (cls === 1 || cls === 2) address = c.offset();
  else if (cls !== 0) c.fail(`unknown layout class ${cls}`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(c.u32());
  if (cls === 2) return chunked(c, dims, "btree-v1", address, version, 0);
  if (cls === 1) return { kind: "contiguous", address, size: null };
  const size = c.u32();
  return { kind: "compact", data: c.bytes(size).slice() };
}

function decodeChunkedV3(c: Cursor): ChunkedLayout {
  const ndims = c.u8();
  const address = c.offset();
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(c.u32());
  return chunked(c, dims, "btree-v1", address, 3, 0);
}

function decodeChunkedV4(c: Cursor, version: number): ChunkedLayout {
  const flags = c.u8();
  if (flags & ~0x03) c.fail(`unknown chunked layout flags 0x${flags.toString(16)}`);
  const ndims = c.u8();
  const encBytes = c.u8();
  if (encBytes < 1 || encBytes > 8) c.fail(`invalid encoded dimension size ${encBytes}`);
  const dims: number[] = [];
  for (let i = 0; i < ndims; i++) dims.push(c.uvar(encBytes));
  const indexTypeId = c.u8();
  if (indexTypeId === 0 || indexTypeId > 5) {
    if (indexTypeId > 5) throw new Hdf5UnsupportedError(`chunk index type ${indexTypeId} is not supported`);
    c.fail("v1 B-tree index type in a version 4 layout message");
  }
  const indexType = INDEX_TYPES[indexTypeId]!;
  const extra: Partial<ChunkedLayout> = {};
  switch (indexTypeId) {
    case 1:
      if (flags & 0x02) {
        extra.singleChunkFilteredSize = c.length();
        extra.singleChunkFilterMask = c.u32();
      }
      break;
    case 3:
      extra.fixedArrayPageBits = c.u8();
      if (extra.fixedArrayPageBits === 0) c.fail("fixed array page bits 0");
      break;
    case 4:
      extra.extensibleArray = {
        maxBits: c.u8(),
        indexElements: c.u8(),
        minPointers: c.u8(),
        minElements: c.u8(),
        pageBits: c.u8(),
      };
      break;
    case 5:
      extra.btreeV2 = { nodeSize: c.u32(), splitPercent: c.u8(), mergePercent: c.u8() };
      break;
  }
  const address = c.offset();
  return { ...chunked(c, dims, indexType, address, version, flags), ...extra };
}
