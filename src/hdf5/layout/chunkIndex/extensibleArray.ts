import { Hdf5FormatError, Hdf5UnsupportedError } from "../errors.ts";
import { log2floor, type Cursor, type FileIo } from "../reader.ts";
import type { ChunkRecord } from "../types.ts";
import { bitSet, decodeElements, type ArrayElement } from "./arrayElements.ts";
import { ceilDiv, checkCount, makeRecord, type ChunkIndexContext } from "./common.ts";

interface Header {
  clientId: number;
  elementSize: number;
  maxBits: number;
  indexElements: number;
  minElements: number;
  minPointers: number;
  pageBits: number;
  maxIndexSet: number;
  indexBlockAddress: number | null;
}

/** Geometry of super block u (H5EAhdr.c H5EA__hdr_init). */
interface SuperInfo {
  ndblks: number;
  dblkNelmts: number;
  /** First element index covered, counted after the index block's own elements. */
  startIdx: number;
  startDblk: number;
}

/** A data block to read: its address and the array index of its first element. */
interface DataBlockJob {
  address: number;
  firstIndex: number;
  nelmts: number;
  /** Page-init bitmap bits for this block when paged (from its super block), else null. */
  pageInit: ((page: number) => boolean) | null;
}

/**
 * Extensible array index (one unlimited dimension): header "EAHD", index
 * block "EAIB" with the first elements, data block addresses and super block
 * addresses, super blocks "EASB" with data block addresses (and page bitmaps),
 * data blocks "EADB" (possibly paged). Array index i maps to a chunk through
 * the grid with the unlimited dimension moved first ("swizzled", H5Dearray.c).
 */
export async function listExtensibleArray(ctx: ChunkIndexContext): Promise<ChunkRecord[]> {
  const { layout, io } = ctx;
  if (layout.indexAddress === null) return [];
  const hdr = await readHeader(io, layout.indexAddress, ctx.what);
  if (hdr.indexBlockAddress === null || hdr.maxIndexSet === 0) return [];
  checkCount(ctx, hdr.maxIndexSet);
  const { offsetSize: O } = io.ctx;
  const toChunk = swizzledUnravel(ctx);

  // Super block geometry.
  const nsblks = 1 + (hdr.maxBits - log2floor(hdr.minElements));
  const supers: SuperInfo[] = [];
  let startIdx = 0;
  let startDblk = 0;
  for (let u = 0; u < nsblks; u++) {
    const ndblks = 2 ** Math.floor(u / 2);
    const dblkNelmts = 2 ** Math.floor((u + 1) / 2) * hdr.minElements;
    supers.push({ ndblks, dblkNelmts, startIdx, startDblk });
    startIdx += ndblks * dblkNelmts;
    startDblk += ndblks;
  }
  const iblockSupers = 2 * log2floor(hdr.minPointers);
  const ndblkAddrs = 2 * (hdr.minPointers - 1);
  const nsblkAddrs = Math.max(0, nsblks - iblockSupers);
  const pageNelmts = 2 ** hdr.pageBits;
  const arrOffSize = Math.ceil(hdr.maxBits / 8);

  // Index block.
  const ilabel = `${ctx.what}: extensible array index block`;
  const isize = 4 + 1 + 1 + O + hdr.indexElements * hdr.elementSize + (ndblkAddrs + nsblkAddrs) * O + 4;
  const ibuf = await io.read(hdr.indexBlockAddress, isize, ilabel);
  const ic = io.cursor(ibuf, hdr.indexBlockAddress, ilabel);
  ic.signature("EAIB");
  checkVersionAndClient(ic, hdr);
  ic.offset(); // header address
  const found: { index: number; el: ArrayElement }[] = [];
  decodeElements(ic, hdr.indexElements, hdr.clientId, hdr.elementSize, layout.chunkBytes).forEach((el, index) =>
    found.push({ index, el }),
  );
  const dblkAddrs: (number | null)[] = [];
  for (let i = 0; i < ndblkAddrs; i++) dblkAddrs.push(ic.offset());
  const sblkAddrs: (number | null)[] = [];
  for (let i = 0; i < nsblkAddrs; i++) sblkAddrs.push(ic.offset());

  const jobs: DataBlockJob[] = [];
  // Data blocks addressed directly from the index block belong to the first super blocks.
  for (let u = 0; u < iblockSupers && u < nsblks; u++) {
    const s = supers[u]!;
    for (let k = 0; k < s.ndblks; k++) {
      const addr = dblkAddrs[s.startDblk + k];
      const firstIndex = hdr.indexElements + s.startIdx + k * s.dblkNelmts;
      if (addr === null || addr === undefined || firstIndex >= hdr.maxIndexSet) continue;
      if (s.dblkNelmts > pageNelmts) {
        throw new Hdf5UnsupportedError(`${ctx.what}: paged extensible array data block in the index block`);
      }
      jobs.push({ address: addr, firstIndex, nelmts: s.dblkNelmts, pageInit: null });
    }
  }
  // Super blocks, read concurrently, each listing more data blocks.
  const superJobs = await Promise.all(
    sblkAddrs.map(async (addr, j) => {
      const u = iblockSupers + j;
      const s = supers[u]!;
      const first = hdr.indexElements + s.startIdx;
      if (addr === null || first >= hdr.maxIndexSet) return [];
      return readSuperBlock(io, ctx, hdr, addr, s, first, pageNelmts, arrOffSize);
    }),
  );
  for (const js of superJobs) jobs.push(...js);

  const blocks = await Promise.all(jobs.map((job) => readDataBlock(io, ctx, hdr, job, pageNelmts, arrOffSize)));
  for (const b of blocks) found.push(...b);

  const out: ChunkRecord[] = [];
  for (const { index, el } of found) {
    if (el.address === null || index >= hdr.maxIndexSet) continue;
    out.push(makeRecord(ctx, toChunk(index), el.address, el.size, el.filterMask));
  }
  return out;
}

function checkVersionAndClient(c: Cursor, hdr: Header): void {
  const version = c.u8();
  if (version !== 0) c.fail(`unsupported version ${version}`);
  const client = c.u8();
  if (client !== hdr.clientId) c.fail(`client id ${client} differs from the header's ${hdr.clientId}`);
}

async function readHeader(io: FileIo, address: number, what: string): Promise<Header> {
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const label = `${what}: extensible array header`;
  const buf = await io.read(address, 4 + 1 + 1 + 6 + 6 * L + O + 4, label);
  const c = io.cursor(buf, address, label);
  c.signature("EAHD");
  const version = c.u8();
  if (version !== 0) c.fail(`unsupported version ${version}`);
  const clientId = c.u8();
  const elementSize = c.u8();
  const maxBits = c.u8();
  const indexElements = c.u8();
  const minElements = c.u8();
  const minPointers = c.u8();
  const pageBits = c.u8();
  c.length(); // number of super blocks
  c.length(); // size of super blocks
  c.length(); // number of data blocks
  c.length(); // size of data blocks
  const maxIndexSet = c.length();
  c.length(); // number of elements realized
  const indexBlockAddress = c.offset();
  if (maxBits === 0 || maxBits > 64) c.fail(`invalid maximum bits ${maxBits}`);
  for (const [n, v] of [
    ["minimum data block elements", minElements],
    ["minimum super block pointers", minPointers],
  ] as const) {
    if (v === 0 || (v & (v - 1)) !== 0) c.fail(`${n} ${v} is not a power of two`);
  }
  if (log2floor(minElements) > maxBits) c.fail("minimum data block elements exceed the maximum");
  if (pageBits > 32) c.fail(`implausible page bits ${pageBits}`);
  return { clientId, elementSize, maxBits, indexElements, minElements, minPointers, pageBits, maxIndexSet, indexBlockAddress };
}

async function readSuperBlock(
  io: FileIo,
  ctx: ChunkIndexContext,
  hdr: Header,
  address: number,
  s: SuperInfo,
  firstIndex: number,
  pageNelmts: number,
  arrOffSize: number,
): Promise<DataBlockJob[]> {
  const O = io.ctx.offsetSize;
  const label = `${ctx.what}: extensible array super block`;
  const paged = s.dblkNelmts > pageNelmts;
  const npages = paged ? s.dblkNelmts / pageNelmts : 0;
  const initSize = paged ? Math.ceil(npages / 8) : 0;
  const size = 4 + 1 + 1 + O + arrOffSize + s.ndblks * initSize + s.ndblks * O + 4;
  const buf = await io.read(address, size, label);
  const c = io.cursor(buf, address, label);
  c.signature("EASB");
  checkVersionAndClient(c, hdr);
  c.offset(); // header address
  c.skip(arrOffSize); // block offset
  const bitmap = c.bytes(s.ndblks * initSize);
  const jobs: DataBlockJob[] = [];
  for (let k = 0; k < s.ndblks; k++) {
    const addr = c.offset();
    const first = firstIndex + k * s.dblkNelmts;
    if (addr === null || first >= hdr.maxIndexSet) continue;
    // Bit numbering follows H5EA__lookup_elmt: data block k's pages start at bit k * npages.
    const pageInit = paged ? (p: number) => bitSet(bitmap, k * npages + p) : null;
    jobs.push({ address: addr, firstIndex: first, nelmts: s.dblkNelmts, pageInit });
  }
  return jobs;
}

async function readDataBlock(
  io: FileIo,
  ctx: ChunkIndexContext,
  hdr: Header,
  job: DataBlockJob,
  pageNelmts: number,
  arrOffSize: number,
): Promise<{ index: number; el: ArrayElement }[]> {
  const O = io.ctx.offsetSize;
  const label = `${ctx.what}: extensible array data block`;
  const prefix = 4 + 1 + 1 + O + arrOffSize;
  // Only elements below max_idx_set were ever written; don't decode the rest.
  const wanted = Math.min(job.nelmts, hdr.maxIndexSet - job.firstIndex);
  const found: { index: number; el: ArrayElement }[] = [];
  if (!job.pageInit) {
    const buf = await io.read(job.address, prefix + wanted * hdr.elementSize, label);
    const c = io.cursor(buf, job.address, label);
    c.signature("EADB");
    checkVersionAndClient(c, hdr);
    c.skip(O + arrOffSize);
    decodeElements(c, wanted, hdr.clientId, hdr.elementSize, ctx.layout.chunkBytes).forEach((el, i) =>
      found.push({ index: job.firstIndex + i, el }),
    );
    return found;
  }
  // Paged: verify the block's signature, then read the initialised pages that hold wanted elements.
  const head = await io.read(job.address, prefix, label);
  const hc = io.cursor(head, job.address, label);
  hc.signature("EADB");
  checkVersionAndClient(hc, hdr);
  const pageSize = pageNelmts * hdr.elementSize + 4;
  const pagesStart = job.address + prefix + 4;
  const npages = ceilDiv(wanted, pageNelmts);
  const pages = await Promise.all(
    Array.from({ length: npages }, async (_, p) => {
      if (!job.pageInit!(p)) return [];
      const count = Math.min(pageNelmts, wanted - p * pageNelmts);
      const at = pagesStart + p * pageSize;
      const buf = await io.read(at, count * hdr.elementSize, `${label} page`);
      const c = io.cursor(buf, at, `${label} page ${p}`);
      return decodeElements(c, count, hdr.clientId, hdr.elementSize, ctx.layout.chunkBytes).map((el, i) => ({
        index: job.firstIndex + p * pageNelmts + i,
        el,
      }));
    }),
  );
  for (const p of pages) found.push(...p);
  return found;
}

/**
 * Maps an extensible-array index to a chunk grid index. The array is laid out
 * row-major over the chunk grid with the unlimited dimension moved to the
 * front; the other dimensions use their maximum extent (H5Dearray.c).
 */
function swizzledUnravel(ctx: ChunkIndexContext): (i: number) => number[] {
  const rank = ctx.layout.chunkShape.length;
  const unlimited: number[] = [];
  ctx.maxShape.forEach((m, i) => {
    if (m === null) unlimited.push(i);
  });
  if (unlimited.length !== 1) {
    throw new Hdf5FormatError(
      `${ctx.what}: extensible array index needs exactly one unlimited dimension, found ${unlimited.length}`,
    );
  }
  const u = unlimited[0]!;
  const others: number[] = [];
  for (let d = 0; d < rank; d++) if (d !== u) others.push(d);
  const otherGrid = others.map((d) => ceilDiv(ctx.maxShape[d]!, ctx.layout.chunkShape[d]!));
  const otherTotal = otherGrid.reduce((a, b) => a * b, 1);
  return (i: number) => {
    const out = new Array<number>(rank).fill(0);
    if (otherTotal === 0) return out;
    out[u] = Math.floor(i / otherTotal);
    let rest = i % otherTotal;
    for (let k = others.length - 1; k >= 0; k--) {
      out[others[k]!] = rest % otherGrid[k]!;
      rest = Math.floor(rest / otherGrid[k]!);
    }
    return out;
  };
}
