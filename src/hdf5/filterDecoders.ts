import { inflateSync } from "node:zlib";
import { decodeBlosc, lz4DecompressBlock } from "../lindi/codecs/blosc.ts";
import type { FilterInfo } from "./layout/index.ts";

/** A filter of the pipeline we cannot undo (szip, nbit, scaleoffset, zstd, …). */
export class UnsupportedFilterDecodeError extends Error {
  constructor(readonly filter: FilterInfo) {
    super(`no decoder for HDF5 filter ${filter.name ?? filter.id} (id ${filter.id})`);
  }
}

export function unshuffle(data: Uint8Array, elementSize: number): Uint8Array {
  if (elementSize <= 1) return data;
  const n = Math.floor(data.length / elementSize);
  const out = new Uint8Array(data.length);
  for (let b = 0; b < elementSize; b++) {
    const src = b * n;
    for (let i = 0; i < n; i++) out[i * elementSize + b] = data[src + i]!;
  }
  // bytes beyond the last whole element are stored as they are
  out.set(data.subarray(n * elementSize), n * elementSize);
  return out;
}

/** LZF (liblzf) decompression, as the HDF5 lzf filter (32000) stores chunks. */
export function lzfDecompress(src: Uint8Array, outSize: number): Uint8Array {
  const out = new Uint8Array(outSize);
  let ip = 0;
  let op = 0;
  while (ip < src.length) {
    const ctrl = src[ip++]!;
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (op + len > outSize || ip + len > src.length) throw new Error("corrupt LZF data");
      out.set(src.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      let len = ctrl >> 5;
      if (len === 7) len += src[ip++]!;
      let ref = op - ((ctrl & 0x1f) << 8) - 1 - src[ip++]!;
      len += 2;
      if (ref < 0 || op + len > outSize) throw new Error("corrupt LZF data");
      while (len-- > 0) out[op++] = out[ref++]!;
    }
  }
  return op === outSize ? out : out.subarray(0, op);
}

function readU32BE(b: Uint8Array, at: number): number {
  return ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
}

function readU64BE(b: Uint8Array, at: number): number {
  return readU32BE(b, at) * 2 ** 32 + readU32BE(b, at + 4);
}

/** The HDF5 LZ4 filter (32004): u64 BE size, u32 BE block size, then per block u32 BE length + LZ4 block. */
export function hdf5Lz4Decompress(src: Uint8Array): Uint8Array {
  const total = readU64BE(src, 0);
  const blockSize = readU32BE(src, 8);
  const out = new Uint8Array(total);
  let ip = 12;
  let op = 0;
  while (op < total) {
    const want = Math.min(blockSize, total - op);
    const len = readU32BE(src, ip);
    ip += 4;
    const block = src.subarray(ip, ip + len);
    if (len === want) out.set(block, op); // stored uncompressed
    else lz4DecompressBlock(block, out.subarray(op, op + want));
    ip += len;
    op += want;
  }
  return out;
}

/** Undoes bitshuffle's bit transpose of one block of `n` elements (n a multiple of 8). */
function bitUnshuffleBlock(src: Uint8Array, n: number, size: number, out: Uint8Array): void {
  const rowBytes = n / 8;
  out.fill(0);
  for (let j = 0; j < size; j++) {
    for (let k = 0; k < 8; k++) {
      const row = src.subarray((j * 8 + k) * rowBytes, (j * 8 + k + 1) * rowBytes);
      for (let i = 0; i < n; i++) {
        if ((row[i >> 3]! >> (i & 7)) & 1) out[i * size + j]! |= 1 << k;
      }
    }
  }
}

function defaultBitshuffleBlock(size: number): number {
  const n = Math.floor(8192 / size / 8) * 8;
  return Math.max(n, 128);
}

/**
 * The bitshuffle filter (32008): cd[2] element size, cd[3] block size in
 * elements (0 = default), cd[4] compression (0 none, 2 LZ4). Elements past the
 * last multiple of 8 are stored unshuffled at the end.
 */
export function bitshuffleDecode(src: Uint8Array, cd: number[], outSize: number): Uint8Array {
  const size = cd[2] ?? 1;
  const compression = cd[4] ?? 0;
  let ip = 0;
  let total = outSize;
  let blockElems = cd[3] || defaultBitshuffleBlock(size);
  if (compression === 2) {
    total = readU64BE(src, 0);
    blockElems = readU32BE(src, 8) / size;
    ip = 12;
  } else if (compression !== 0) {
    throw new Error(`bitshuffle with compression ${compression} is not supported`);
  }
  const nElems = Math.floor(total / size);
  const out = new Uint8Array(total);
  let done = 0;
  while (nElems - done >= 8) {
    const n = Math.min(blockElems, nElems - done - ((nElems - done) % 8));
    const bytes = n * size;
    let shuffled: Uint8Array;
    if (compression === 2) {
      const len = readU32BE(src, ip);
      ip += 4;
      shuffled = new Uint8Array(bytes);
      lz4DecompressBlock(src.subarray(ip, ip + len), shuffled);
      ip += len;
    } else {
      shuffled = src.subarray(ip, ip + bytes);
      ip += bytes;
    }
    bitUnshuffleBlock(shuffled, n, size, out.subarray(done * size, done * size + bytes));
    done += n;
  }
  out.set(src.subarray(ip, ip + (total - done * size)), done * size);
  return out;
}

/**
 * The N-bit filter (5) for atomic types: each element's `precision`
 * significant bits (starting at bit `offset`) are packed MSB-first into a
 * bit stream; restoring puts them back in place with the padding bits zero.
 * cd: [count, need-not-compress, elements, class (1 = atomic), size, order (0 LE, 1 BE), precision, offset].
 */
export function nbitDecode(src: Uint8Array, cd: number[]): Uint8Array {
  const [, notCompressed, count = 0, cls, size = 0, order, precision = 0, offset = 0] = cd;
  if (notCompressed) return src;
  if (cls !== 1) throw new Error("N-bit filter on compound or array types is not supported");
  const out = new Uint8Array(count * size);
  let byte = 0;
  let bitsLeft = 8;
  const nextBit = (): number => {
    if (bitsLeft === 0) {
      byte++;
      bitsLeft = 8;
    }
    bitsLeft--;
    return ((src[byte] ?? 0) >> bitsLeft) & 1;
  };
  for (let e = 0; e < count; e++) {
    const base = e * size;
    // most significant data bit first; bit b of the element value (LSB = 0)
    for (let b = offset + precision - 1; b >= offset; b--) {
      if (!nextBit()) continue;
      const byteInValue = b >> 3;
      const at = order === 1 ? base + size - 1 - byteInValue : base + byteInValue;
      out[at]! |= 1 << (b & 7);
    }
  }
  return out;
}

/**
 * Undoes an HDF5 filter pipeline on one stored chunk (filters run in reverse
 * order; bit i of `filterMask` means filter i was skipped for this chunk).
 * `chunkBytes` is the chunk's decoded size.
 */
export async function decodeChunk(stored: Uint8Array, filters: FilterInfo[], filterMask: number, elementSize: number, chunkBytes: number): Promise<Uint8Array> {
  let data = stored;
  for (let i = filters.length - 1; i >= 0; i--) {
    if (filterMask & (1 << i)) continue;
    const f = filters[i]!;
    switch (f.id) {
      case 1:
        data = new Uint8Array(inflateSync(data));
        break;
      case 2:
        data = unshuffle(data, f.cdValues[0] ?? elementSize);
        break;
      case 3:
        data = data.subarray(0, data.length - 4);
        break;
      case 5:
        data = nbitDecode(data, f.cdValues);
        break;
      case 32000:
        data = lzfDecompress(data, f.cdValues[2] || chunkBytes);
        break;
      case 32001:
        data = await decodeBlosc(data);
        break;
      case 32004:
        data = hdf5Lz4Decompress(data);
        break;
      case 32008:
        data = bitshuffleDecode(data, f.cdValues, chunkBytes);
        break;
      default:
        throw new UnsupportedFilterDecodeError(f);
    }
  }
  return data;
}
