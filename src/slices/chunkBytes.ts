/**
 * Where the stored (encoded) bytes of one chunk are, for `GET /chunk?key=`:
 * inline bytes from the document, or a byte range of the source file, plus
 * what a client needs to decode them (the Zarr codec pipeline, dtype, chunk
 * shape, fill value).
 *
 * For `_EXTERNAL_ARRAY_LINK` datasets (no chunk refs in the document) the
 * chunk is looked up in the HDF5 chunk index of the linked file, given a
 * source opener; its `filters` are the `.zarray`'s (the same mapping of the
 * HDF5 pipeline). A chunk that skipped filters (HDF5 filter mask ≠ 0) says so
 * in `filterMask`.
 */
import type { PyJson } from "../lindi/pythonJson.ts";
import { readZArray } from "./codecs.ts";
import { defaultExternalDatasetCache, type ExternalDatasetCache, type SourceOpener } from "./external.ts";
import { datasetInfo, PathNotFoundError } from "./readSlice.ts";
import { LindiRefStore, UnsupportedUrlError, type LindiRefs } from "./refStore.ts";

/** The chunk was never written: readers use the fill value (the route answers 404 with it). */
export class ChunkNotFoundError extends Error {
  override readonly name = "ChunkNotFoundError";
  constructor(
    readonly path: string,
    readonly key: string,
    /** The `.zarray` fill value (Zarr encoding: NaN as "NaN", |S as base64, …). */
    readonly fillValue: PyJson,
  ) {
    super(`chunk ${key} of ${path} was never written (reads give the fill value ${JSON.stringify(String(fillValue))})`);
  }
}

/** A malformed chunk key, or one outside the chunk grid (the route answers 400). */
export class InvalidChunkKeyError extends Error {
  override readonly name = "InvalidChunkKeyError";
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`chunk key ${JSON.stringify(key)}: ${message}`);
  }
}

export type ChunkBytesLocation =
  | { kind: "inline"; bytes: Uint8Array }
  | { kind: "range"; url: string; offset: number; length: number };

export interface ChunkInfo {
  /** Dataset key (no leading slash, soft links followed). */
  path: string;
  /** Canonical chunk key ("0.3"). */
  key: string;
  /** Chunk grid position. */
  index: number[];
  location: ChunkBytesLocation;
  /** numcodecs configs, applied in reverse order when decoding (null = none). */
  filters: PyJson[] | null;
  compressor: PyJson | null;
  dtype: string;
  /** Chunk shape (edge chunks are stored full size). */
  chunks: number[];
  /** Array shape as Zarr sees it ([1] for scalars). */
  shape: number[];
  fillValue: PyJson;
  /** External-link chunks only: HDF5 filter mask (bit i = filter i skipped). */
  filterMask?: number;
}

export interface LocateChunkOptions {
  store?: LindiRefStore;
  /** Needed for chunks of `_EXTERNAL_ARRAY_LINK` datasets. */
  openSource?: SourceOpener;
  externalCache?: ExternalDatasetCache;
}

/** Parses "i.j.k" (or "i/j/k" for arrays with dimension_separator "/") into grid indices. */
export function parseChunkKey(key: string, ndim: number, separator: "." | "/" = "."): number[] {
  const k = key.trim();
  const parts = k.split(separator === "/" ? /[./]/ : ".");
  if (!/^\d+([./]\d+)*$/.test(k)) throw new InvalidChunkKeyError(key, "expected grid indices separated by '.'");
  const want = Math.max(1, ndim);
  if (parts.length !== want) throw new InvalidChunkKeyError(key, `has ${parts.length} indices, the array ${want} dimension${want === 1 ? "" : "s"}`);
  return parts.map((p) => {
    const v = Number(p);
    if (!Number.isSafeInteger(v)) throw new InvalidChunkKeyError(key, `index ${p} is out of range`);
    return v;
  });
}

/** Locates the stored bytes of chunk `key` of the dataset at `path`. */
export async function locateChunk(doc: LindiRefs, path: string, key: string, opts: LocateChunkOptions = {}): Promise<ChunkInfo> {
  const store = opts.store ?? new LindiRefStore(doc, { rangeReader: () => Promise.reject(new Error("no reads")), cache: null });
  const info = datasetInfo(doc, path, { store });
  const zarray = readZArray(store.json(`${info.path}/.zarray`));
  const sep = zarray.dimension_separator ?? ".";
  const index = parseChunkKey(key, zarray.shape.length, sep);
  index.forEach((g, d) => {
    const cells = zarray.chunks[d]! === 0 ? 0 : Math.ceil(zarray.shape[d]! / zarray.chunks[d]!);
    if (g >= cells) throw new InvalidChunkKeyError(key, `index ${g} is outside the chunk grid (${cells} chunks along dimension ${d})`);
  });
  const canonical = index.join(sep);
  const base = {
    path: info.path,
    key: canonical,
    index,
    filters: zarray.filters,
    compressor: zarray.compressor,
    dtype: zarray.dtype,
    chunks: zarray.chunks,
    shape: zarray.shape,
    fillValue: zarray.fill_value,
  };
  if (info.externalLink) {
    if (!opts.openSource) throw new UnsupportedUrlError(info.externalLink.url, "no source opener configured for external array links");
    const ext = await (opts.externalCache ?? defaultExternalDatasetCache()).get(info.externalLink.url, info.externalLink.name, opts.openSource);
    if (!ext.chunks) throw new PathNotFoundError(path, "the linked HDF5 dataset is not chunked");
    const rec = ext.chunks.get(index.join(","));
    if (!rec) throw new ChunkNotFoundError(info.path, canonical, zarray.fill_value);
    return { ...base, location: { kind: "range", url: info.externalLink.url, offset: rec.offset, length: rec.size }, filterMask: rec.filterMask };
  }
  const loc = store.locate(`${info.path}/${canonical}`);
  if (!loc) throw new ChunkNotFoundError(info.path, canonical, zarray.fill_value);
  if (loc.kind === "json") throw new InvalidChunkKeyError(key, "names a metadata object, not a chunk");
  return { ...base, location: loc };
}
