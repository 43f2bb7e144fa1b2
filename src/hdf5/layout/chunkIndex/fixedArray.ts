import { Hdf5FormatError } from "../errors.ts";
import type { ChunkRecord } from "../types.ts";
import { bitSet, decodeElements, type ArrayElement } from "./arrayElements.ts";
import { checkCount, coalesce, makeRecord, maxChunkGrid, unravel, type ChunkIndexContext } from "./common.ts";

/** Largest single read when fetching consecutive data block pages. */
const MAX_COALESCED_READ = 8 * 1024 * 1024;

/**
 * Fixed array index ("FAHD" header, "FADB" data block). Element i is the
 * chunk with row-major index i over the grid of the maximum dimensions. Large
 * data blocks are split into pages, each present only if its bit in the page
 * bitmap is set; consecutive present pages are fetched in one read.
 */
export async function listFixedArray(ctx: ChunkIndexContext): Promise<ChunkRecord[]> {
  const { layout, io } = ctx;
  if (layout.indexAddress === null) return [];
  const { offsetSize: O, lengthSize: L } = io.ctx;
  const hlabel = `${ctx.what}: fixed array header`;
  const hbuf = await io.read(layout.indexAddress, 4 + 1 + 1 + 1 + 1 + L + O + 4, hlabel);
  const h = io.cursor(hbuf, layout.indexAddress, hlabel);
  h.signature("FAHD");
  const version = h.u8();
  if (version !== 0) h.fail(`unsupported version ${version}`);
  const clientId = h.u8();
  const entrySize = h.u8();
  const pageBits = h.u8();
  const nelmts = h.length();
  const dblockAddr = h.offset();
  if (pageBits > 32) h.fail(`implausible page bits ${pageBits}`);
  checkCount(ctx, nelmts);
  const grid = maxChunkGrid(ctx);
  const gridTotal = grid.reduce((a, b) => a * b, 1);
  if (nelmts > gridTotal) {
    throw new Hdf5FormatError(`${ctx.what}: fixed array has ${nelmts} elements but the chunk grid only ${gridTotal}`);
  }
  if (dblockAddr === null || nelmts === 0) return [];

  const dlabel = `${ctx.what}: fixed array data block`;
  const pageNelmts = 2 ** pageBits;
  const paged = nelmts > pageNelmts;
  const npages = paged ? Math.ceil(nelmts / pageNelmts) : 0;
  const bitmapSize = paged ? Math.ceil(npages / 8) : 0;
  const prefix = 4 + 1 + 1 + O + bitmapSize;
  const dsize = prefix + (paged ? 0 : nelmts * entrySize) + 4;
  const dbuf = await io.read(dblockAddr, dsize, dlabel);
  const d = io.cursor(dbuf, dblockAddr, dlabel);
  d.signature("FADB");
  const dversion = d.u8();
  if (dversion !== 0) d.fail(`unsupported version ${dversion}`);
  if (d.u8() !== clientId) d.fail("client id differs from the header's");
  d.offset(); // header address

  let elements: { index: number; el: ArrayElement }[] = [];
  if (!paged) {
    const els = decodeElements(d, nelmts, clientId, entrySize, layout.chunkBytes);
    elements = els.map((el, index) => ({ index, el }));
  } else {
    const bitmap = d.bytes(bitmapSize);
    // Pages follow the data block (prefix + bitmap + checksum), each with its own checksum.
    const pagesStart = dblockAddr + prefix + 4;
    const pageSize = pageNelmts * entrySize + 4;
    const pages: { page: number; count: number; start: number; end: number }[] = [];
    for (let p = 0; p < npages; p++) {
      if (!bitSet(bitmap, p)) continue;
      const count = p === npages - 1 ? nelmts - p * pageNelmts : pageNelmts;
      const start = pagesStart + p * pageSize;
      pages.push({ page: p, count, start, end: start + count * entrySize + 4 });
    }
    const groups = coalesce(pages, MAX_COALESCED_READ);
    const decoded = await Promise.all(
      groups.map(async (group) => {
        const first = group[0]!;
        const last = group[group.length - 1]!;
        const buf = await io.read(first.start, last.end - first.start, `${dlabel} page`);
        const found: { index: number; el: ArrayElement }[] = [];
        for (const pg of group) {
          const c = io.cursor(buf.subarray(pg.start - first.start, pg.end - first.start), pg.start, `${dlabel} page ${pg.page}`);
          const els = decodeElements(c, pg.count, clientId, entrySize, layout.chunkBytes);
          els.forEach((el, i) => found.push({ index: pg.page * pageNelmts + i, el }));
        }
        return found;
      }),
    );
    elements = decoded.flat();
  }
  const out: ChunkRecord[] = [];
  for (const { index, el } of elements) {
    if (el.address === null) continue;
    out.push(makeRecord(ctx, unravel(index, grid), el.address, el.size, el.filterMask));
  }
  return out;
}
