/**
 * Fetch scheduling for /slice: the chunks a selection touches are requested
 * before readSlice asks for them, in up to 16 parallel merged requests (each
 * a run of neighbouring chunks, ≥ 256 KiB: an object store caps each connection
 * at tens of MB/s, so parallel requests beat one large one) rather than one batch per file.
 * Every request's chunks enter the shared ChunkCache as soon as it lands, so
 * decoding starts while later requests are still on the wire (readSlice waits
 * on the in-flight entries instead of fetching again).
 *
 * Best effort: anything unusual (external links, scalars, bad selections,
 * selections over the limits) is left to readSlice, which reports errors.
 */
import { chunkIndicesOf, chunksTouched, product } from "../../slices/external.ts";
import { datasetInfo, parseSelection, type ChunkCache, type RangeReader, type Selection } from "../../slices/index.ts";
import type { OpenedIndex } from "./context.ts";

const MIN_REQUEST_BYTES = 256 * 1024;
const MAX_PARALLEL = 16;

export interface PrefetchLimits {
  maxElements: number;
  maxBytes: number;
  maxChunks?: number;
}

/** A selection parsed against its dataset's shape, and how many chunks it touches. */
export interface PlannedRead {
  selection: Selection;
  chunks: number;
}

/**
 * Starts fetching the byte-range chunks of `select` that are not cached;
 * returns at once, with the selection parsed when that worked (readSlice can
 * take it instead of parsing the text again).
 */
export function prefetchSelection(ix: OpenedIndex, cache: ChunkCache, reader: RangeReader, path: string, select: string, limits: PrefetchLimits): PlannedRead | undefined {
  let byUrl: Map<string, { offset: number; length: number }[]>;
  let plan: PlannedRead;
  try {
    const info = datasetInfo(ix.doc, path, { store: ix.store });
    if (info.externalLink || info.scalar || info.shape.length === 0) return undefined;
    const sel = parseSelection(select, info.shape);
    const n = chunksTouched(sel, info.chunks);
    plan = { selection: sel, chunks: n };
    if (!reader.many || sel.count === 0 || sel.count > limits.maxElements) return plan;
    const itemsize = Number(/(\d+)$/.exec(info.dtype)?.[1] ?? 8);
    if (sel.count * itemsize > limits.maxBytes) return plan; // readSlice will refuse it (413)
    if (n < 2 || n > (limits.maxChunks ?? 65_536)) return plan;
    byUrl = new Map();
    for (const idx of product(sel.dims.map((d, i) => chunkIndicesOf(d, info.chunks[i]!)))) {
      const loc = ix.store.locate(`${info.path}/${idx.join(".")}`);
      if (loc?.kind !== "range" || loc.length === 0 || cache.has(loc.url, loc.offset, loc.length)) continue;
      let list = byUrl.get(loc.url);
      if (!list) byUrl.set(loc.url, (list = []));
      list.push({ offset: loc.offset, length: loc.length });
    }
  } catch {
    return undefined; // readSlice will say what is wrong
  }
  const many = reader.many;
  for (const [url, ranges] of byUrl) {
    if (ranges.length < 2) continue;
    ranges.sort((a, b) => a.offset - b.offset);
    const total = ranges.reduce((a, r) => a + r.length, 0);
    const target = Math.max(MIN_REQUEST_BYTES, Math.ceil(total / MAX_PARALLEL));
    let batch: { offset: number; length: number }[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      const b = batch;
      void cache.prefetchMany(url, b, (missing, onRange) => many!(url, missing, undefined, onRange));
      batch = [];
      bytes = 0;
    };
    for (const r of ranges) {
      batch.push(r);
      bytes += r.length;
      if (bytes >= target) flush();
    }
    flush();
  }
  return plan;
}
