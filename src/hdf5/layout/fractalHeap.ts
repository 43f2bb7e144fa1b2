import { Hdf5FormatError, Hdf5UnsupportedError } from "./errors.ts";
import { log2floor, type FileIo } from "./reader.ts";

/** The parts of a fractal heap header ("FRHP") needed to fetch managed and tiny objects. */
export interface FractalHeapHeader {
  address: number;
  heapIdLength: number;
  filterInfoLength: number;
  flags: number;
  maxManagedSize: number;
  tableWidth: number;
  startBlockSize: number;
  maxDirectBlockSize: number;
  maxHeapSizeBits: number;
  rootBlockAddress: number | null;
  currentRootRows: number;
  /** Derived doubling-table values (see H5HFdtable.c). */
  heapOffsetSize: number;
  heapLengthSize: number;
  maxDirectRows: number;
  firstRowBits: number;
  rowBlockSize: number[];
  rowBlockOffset: number[];
}

export async function readFractalHeapHeader(io: FileIo, address: number): Promise<FractalHeapHeader> {
  const what = `fractal heap header at ${address}`;
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const fixed = 4 + 1 + 2 + 2 + 1 + 4 + 12 * L + 3 * O + 2 + 2 + 2 + 2 + 4;
  const buf = await io.read(address, fixed, what);
  const c = io.cursor(buf, address, what);
  c.signature("FRHP");
  const version = c.u8();
  if (version !== 0) c.fail(`unsupported version ${version}`);
  const heapIdLength = c.u16();
  const filterInfoLength = c.u16();
  const flags = c.u8();
  const maxManagedSize = c.u32();
  c.length(); // next huge object id
  c.offset(); // huge object v2 B-tree
  c.length(); // free space in managed blocks
  c.offset(); // free space manager
  c.length(); // managed space
  c.length(); // allocated managed space
  c.length(); // direct block allocation iterator offset
  c.length(); // number of managed objects
  c.length(); // size of huge objects
  c.length(); // number of huge objects
  c.length(); // size of tiny objects
  c.length(); // number of tiny objects
  const tableWidth = c.u16();
  const startBlockSize = c.length();
  const maxDirectBlockSize = c.length();
  const maxHeapSizeBits = c.u16();
  c.u16(); // starting number of rows in root indirect block
  const rootBlockAddress = c.offset();
  const currentRootRows = c.u16();
  if (tableWidth === 0 || (tableWidth & (tableWidth - 1)) !== 0) c.fail(`invalid table width ${tableWidth}`);
  for (const [n, v] of [
    ["starting block size", startBlockSize],
    ["maximum direct block size", maxDirectBlockSize],
  ] as const) {
    if (v === 0 || 2 ** log2floor(v) !== v) c.fail(`invalid ${n} ${v}`);
  }
  if (maxHeapSizeBits === 0 || maxHeapSizeBits > 64) c.fail(`invalid maximum heap size ${maxHeapSizeBits} bits`);
  const startBits = log2floor(startBlockSize);
  const firstRowBits = startBits + log2floor(tableWidth);
  const maxDirectRows = log2floor(maxDirectBlockSize) - startBits + 2;
  const maxRootRows = Math.max(0, maxHeapSizeBits - firstRowBits + 1);
  const rowBlockSize: number[] = [];
  const rowBlockOffset: number[] = [];
  let size = startBlockSize;
  let off = startBlockSize * tableWidth;
  for (let r = 0; r < maxRootRows; r++) {
    if (r === 0) {
      rowBlockSize.push(startBlockSize);
      rowBlockOffset.push(0);
    } else {
      rowBlockSize.push(size);
      rowBlockOffset.push(off);
      size *= 2;
      off *= 2;
    }
  }
  const heapOffsetSize = Math.ceil(maxHeapSizeBits / 8);
  const maxDirBlkOffSize = Math.ceil(log2floor(maxDirectBlockSize) / 8);
  const heapLengthSize = Math.min(maxDirBlkOffSize, Math.floor(log2floor(maxManagedSize) / 8) + 1);
  return {
    address,
    heapIdLength,
    filterInfoLength,
    flags,
    maxManagedSize,
    tableWidth,
    startBlockSize,
    maxDirectBlockSize,
    maxHeapSizeBits,
    rootBlockAddress,
    currentRootRows,
    heapOffsetSize,
    heapLengthSize,
    maxDirectRows,
    firstRowBits,
    rowBlockSize,
    rowBlockOffset,
  };
}

function leUint(bytes: Uint8Array, start: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[start + i]!;
  if (!Number.isSafeInteger(v)) throw new Hdf5FormatError("fractal heap id: value too large");
  return v;
}

/** Row and column of a heap offset in the doubling table (H5HF__dtable_lookup). */
function lookup(h: FractalHeapHeader, off: number): { row: number; col: number } {
  if (off < h.startBlockSize * h.tableWidth) return { row: 0, col: Math.floor(off / h.startBlockSize) };
  const highBit = log2floor(off);
  const row = highBit - h.firstRowBits + 1;
  const size = h.rowBlockSize[row];
  if (size === undefined) throw new Hdf5FormatError(`fractal heap at ${h.address}: offset ${off} outside the heap`);
  return { row, col: Math.floor((off - 2 ** highBit) / size) };
}

/** Fetches one object by heap id: tiny objects from the id itself, managed objects from their direct block. */
export async function readFractalHeapObject(io: FileIo, h: FractalHeapHeader, id: Uint8Array): Promise<Uint8Array> {
  const what = `fractal heap at ${h.address}`;
  if (id.length < 1) throw new Hdf5FormatError(`${what}: empty heap id`);
  const flag = id[0]!;
  if (flag >> 6 !== 0) throw new Hdf5FormatError(`${what}: unsupported heap id version ${flag >> 6}`);
  const type = (flag >> 4) & 0x03;
  if (type === 2) {
    // Tiny: the object is stored inside the id.
    if (h.heapIdLength <= 18) {
      const len = (flag & 0x0f) + 1;
      return id.slice(1, 1 + len);
    }
    const len = ((flag & 0x0f) << 8 | id[1]!) + 1;
    return id.slice(2, 2 + len);
  }
  if (type === 1) throw new Hdf5UnsupportedError(`${what}: "huge" heap objects are not supported`);
  if (type !== 0) throw new Hdf5FormatError(`${what}: invalid heap id type ${type}`);
  if (h.filterInfoLength > 0) throw new Hdf5UnsupportedError(`${what}: filtered fractal heaps are not supported`);
  if (id.length < 1 + h.heapOffsetSize + h.heapLengthSize) throw new Hdf5FormatError(`${what}: heap id too short`);
  const objOff = leUint(id, 1, h.heapOffsetSize);
  const objLen = leUint(id, 1 + h.heapOffsetSize, h.heapLengthSize);
  if (h.rootBlockAddress === null) throw new Hdf5FormatError(`${what}: heap is empty`);

  let blockAddr: number;
  let blockOff = 0;
  let blockSize: number;
  if (h.currentRootRows === 0) {
    blockAddr = h.rootBlockAddress;
    blockSize = h.startBlockSize;
  } else {
    // Walk indirect blocks down to the direct block holding the offset.
    let iblockAddr = h.rootBlockAddress;
    let nrows = h.currentRootRows;
    let iblockOff = 0;
    for (let depth = 0; ; depth++) {
      if (depth > 64) throw new Hdf5FormatError(`${what}: indirect blocks nested too deep`);
      const { row, col } = lookup(h, objOff - iblockOff);
      if (row >= nrows || col >= h.tableWidth) throw new Hdf5FormatError(`${what}: offset ${objOff} not covered by indirect block`);
      const entry = row * h.tableWidth + col;
      const addr = await readIndirectEntry(io, h, iblockAddr, entry);
      if (addr === null) throw new Hdf5FormatError(`${what}: object at offset ${objOff} lies in an unallocated block`);
      const childOff = iblockOff + h.rowBlockOffset[row]! + col * h.rowBlockSize[row]!;
      if (row < h.maxDirectRows) {
        blockAddr = addr;
        blockOff = childOff;
        blockSize = h.rowBlockSize[row]!;
        break;
      }
      nrows = log2floor(h.rowBlockSize[row]!) - h.firstRowBits + 1;
      iblockAddr = addr;
      iblockOff = childOff;
    }
  }
  const within = objOff - blockOff;
  if (within < 0 || within + objLen > blockSize) {
    throw new Hdf5FormatError(`${what}: object (offset ${objOff}, length ${objLen}) outside its direct block`);
  }
  return io.read(blockAddr + within, objLen, `${what}: object`);
}

/** Address in entry `entry` of an (unfiltered) indirect block. */
async function readIndirectEntry(io: FileIo, h: FractalHeapHeader, iblockAddr: number, entry: number): Promise<number | null> {
  const { offsetSize: O } = io.ctx;
  const prefix = 4 + 1 + O + h.heapOffsetSize;
  const pos = iblockAddr + prefix + entry * O;
  // Check the signature once with the entry in the same read when it is close by.
  if (entry * O < 4096) {
    const buf = await io.read(iblockAddr, prefix + (entry + 1) * O, `fractal heap indirect block at ${iblockAddr}`);
    const c = io.cursor(buf, iblockAddr, `fractal heap indirect block at ${iblockAddr}`);
    c.signature("FHIB");
    c.seek(prefix + entry * O);
    return c.offset();
  }
  const buf = await io.read(pos, O, `fractal heap indirect block at ${iblockAddr}`);
  return io.cursor(buf, pos, "fractal heap indirect block entry").offset();
}
