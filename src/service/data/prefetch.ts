/**
 * Fetch scheduling for /slice: the chunks a selection touches are requested
 * before readSlice asks for them (LindiRefStore.startPrefetch: merged requests
 * of neighbouring chunks, in parallel), and readSlice's own setup runs while
 * they are on the wire. Every chunk enters the shared ChunkCache as soon as it lands, so
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
  type Selection,
  type SliceLimits,
} from "../../slices/index.ts";
import type { OpenedIndex } from "./context.ts";

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
 * cached (the store's startPrefetch: merged, parallel requests); returns at
 * once: true when it started requests (see requestsSent).
 */
export function prefetchPlanned(ix: OpenedIndex, plan: PlannedRead): boolean {
  // (bytes 0: over a limit, readSlice refuses it; external array links are read from the HDF5 file)
  if (plan.arrayPath === undefined || plan.bytes === 0 || plan.chunks < 2) return false;
  const prefix = plan.arrayPath;
  const keys = Array.from(product(plan.selection.dims.map((d, i) => chunkIndicesOf(d, plan.chunkShape[i]!))), (idx) => `${prefix}/${idx.join(".")}`);
  try {
    return ix.store.startPrefetch(keys).length > 0;
  } catch {
    return false; // readSlice will say what is wrong
  }
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
