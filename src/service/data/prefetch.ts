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
 * The plan also sizes the answer, for the budget of answers in progress
 * (byteBudget.ts).
 */
import { setImmediate as nextTurn } from "node:timers/promises";
import { chunkIndicesOf, chunksTouched, product } from "../../slices/external.ts";
import {
  answerItemBytes,
  checkSliceLimits,
  datasetInfo,
  parseSelection,
  SliceTooLargeError,
  type ChunkCache,
  type RangeReader,
  type Selection,
  type SliceLimits,
} from "../../slices/index.ts";
import type { OpenedIndex } from "./context.ts";

const MIN_REQUEST_BYTES = 256 * 1024;
const MAX_PARALLEL = 16;

/** readSlice's limits, and its dtype mode (which sizes float16 answers). */
export interface PrefetchLimits extends SliceLimits {
  dtype?: "native" | "safe";
}

/** A selection parsed against its dataset's shape, and what reading it takes. */
export interface PlannedRead {
  selection: Selection;
  /** Chunks the selection touches. */
  chunks: number;
  /** Bytes of the decoded answer (as readSlice counts them); 0 when readSlice will refuse it (413). */
  bytes: number;
  /** The chunk keys' prefix; undefined for external array links (read from the HDF5 file). */
  arrayPath: string | undefined;
  chunkShape: number[];
}

/**
 * Parses `select` against the dataset and sizes the read; undefined when
 * there is nothing to plan (scalars, 0-d) or something is wrong (readSlice
 * then says what). readSlice can take the parsed selection instead of the text.
 */
export function planRead(ix: OpenedIndex, path: string, select: string, limits: PrefetchLimits): PlannedRead | undefined {
  try {
    const info = datasetInfo(ix.doc, path, { store: ix.store });
    if (info.scalar || info.shape.length === 0) return undefined;
    const selection = parseSelection(select, info.shape);
    const itemBytes = answerItemBytes(info, limits.dtype);
    const chunks = chunksTouched(selection, info.chunks);
    let refused = false;
    try {
      checkSliceLimits(selection, itemBytes, chunks, limits);
    } catch (e) {
      if (!(e instanceof SliceTooLargeError)) throw e;
      refused = true;
    }
    return {
      selection,
      chunks,
      bytes: refused ? 0 : selection.count * itemBytes,
      arrayPath: info.externalLink ? undefined : info.path,
      chunkShape: info.chunks,
    };
  } catch {
    return undefined;
  }
}

/**
 * Starts fetching the byte-range chunks of a planned read that are not
 * cached; returns at once: true when it started requests (see requestsSent).
 */
export function prefetchPlanned(ix: OpenedIndex, cache: ChunkCache, reader: RangeReader, plan: PlannedRead): boolean {
  const many = reader.many;
  // (bytes 0: over a limit, readSlice refuses it)
  if (!many || plan.arrayPath === undefined || plan.bytes === 0 || plan.chunks < 2) return false;
  const sel = plan.selection;
  const byUrl = new Map<string, { offset: number; length: number }[]>();
  try {
    for (const idx of product(sel.dims.map((d, i) => chunkIndicesOf(d, plan.chunkShape[i]!)))) {
      const loc = ix.store.locate(`${plan.arrayPath}/${idx.join(".")}`);
      if (loc?.kind !== "range" || loc.length === 0 || cache.has(loc.url, loc.offset, loc.length)) continue;
      let list = byUrl.get(loc.url);
      if (!list) byUrl.set(loc.url, (list = []));
      list.push({ offset: loc.offset, length: loc.length });
    }
  } catch {
    return false; // readSlice will say what is wrong
  }
  let started = false;
  for (const [url, ranges] of byUrl) {
    if (ranges.length < 2) continue;
    started = true;
    ranges.sort((a, b) => a.offset - b.offset);
    const total = ranges.reduce((a, r) => a + r.length, 0);
    const target = Math.max(MIN_REQUEST_BYTES, Math.ceil(total / MAX_PARALLEL));
    let batch: { offset: number; length: number }[] = [];
    let bytes = 0;
    const flush = () => {
      if (batch.length === 0) return;
      const b = batch;
      void cache.prefetchMany(url, b, (missing, onRange) => many(url, missing, undefined, onRange));
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
  return started;
}

/**
 * Resolves once the requests prefetchPlanned just started are written.
 * undici writes a request on a reused keep-alive socket only in the event
 * loop's next check phase (a setImmediate: bytes already waiting on the idle
 * socket are read first, GHSA-35p6-xmwp-9g52), so synchronous work done
 * before then — readSlice setting up a 100-chunk read takes ≈ 1 ms — delays
 * every request by as much. The first turn runs ahead of undici's immediates
 * (queued by the requests' promise chains after it), the second after them.
 */
export async function requestsSent(): Promise<void> {
  await nextTurn();
  await nextTurn();
}
