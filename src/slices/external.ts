/**
 * Reading `_EXTERNAL_ARRAY_LINK` datasets (spec §5.6): the data is not in
 * refs; the link names an HDF5 file (`url`) and a dataset path (`name`).
 *
 * We open the file through a ByteSource (HTTP ranges or a local file), find
 * the dataset with our own group walker (hdf5Path.ts), read its layout with
 * Hdf5LayoutReader and its chunk index with `listChunks` (all cached per
 * url + name, since these datasets have > 1000 chunks), then fetch and decode
 * only the chunks the selection touches (through the shared ChunkCache,
 * decoded with the project's HDF5 filter decoders) and copy the selected
 * elements out. Contiguous data is read as the byte span from the first to
 * the last selected element; compact data is in the header already.
 */
import { isAbsolute, resolve as resolvePath } from "node:path";
import { LRUCache } from "lru-cache";
import { FileByteSource, type ByteSource } from "../hdf5/byteSource.ts";
import { decodeChunk } from "../hdf5/filterDecoders.ts";
import type { HttpClient } from "../hdf5/httpByteSource.ts";
import { openHttpSource } from "../hdf5/httpByteSource.ts";
import { Hdf5LayoutReader, type ChunkRecord, type DatasetLayoutInfo } from "../hdf5/layout/index.ts";
import { forEachLimited } from "../lindi/forEachLimited.ts";
import { resolveHdf5Path } from "./hdf5Path.ts";
import { localPathOf, UnsupportedUrlError, type ChunkCache } from "./refStore.ts";
import type { DimSelection, Selection } from "./selection.ts";

/** Opens the HDF5 file an external array link names. */
export type SourceOpener = (url: string) => Promise<ByteSource>;

export interface SourceOpenerOptions {
  /** Serves http(s) URLs. */
  httpClient?: HttpClient;
  /** Allow local paths / file:// URLs (relative ones against `baseDir`, default CWD). */
  localFiles?: boolean;
  baseDir?: string;
}

/** Opens http(s) URLs with the HttpClient and (when allowed) local files. */
export function sourceOpener(opts: SourceOpenerOptions): SourceOpener {
  return async (url) => {
    if (/^https?:\/\//i.test(url)) {
      if (!opts.httpClient) throw new UnsupportedUrlError(url, "http(s) reads are not configured");
      return openHttpSource(url, opts.httpClient);
    }
    const p = localPathOf(url);
    if (p === null) throw new UnsupportedUrlError(url, "unsupported URL scheme");
    if (!opts.localFiles) throw new UnsupportedUrlError(url, "local file reads are not allowed");
    return FileByteSource.open(isAbsolute(p) ? p : resolvePath(opts.baseDir ?? process.cwd(), p));
  };
}

/** A dataset of an HDF5 file, ready for chunk reads. */
export interface ExternalDataset {
  url: string;
  name: string;
  source: ByteSource;
  reader: Hdf5LayoutReader;
  info: DatasetLayoutInfo;
  /** Allocated chunks by grid index ("i,j,…"); null for non-chunked layouts. */
  chunks: Map<string, ChunkRecord> | null;
}

export interface ExternalDatasetCacheOptions {
  /** Datasets kept. Default 64. */
  max?: number;
  /** How long an entry is reused, ms. Default 10 minutes. */
  ttlMs?: number;
}

/** Opened external datasets (source + layout + chunk index) by url and name; closes sources on eviction. */
export class ExternalDatasetCache {
  private readonly lru: LRUCache<string, Promise<ExternalDataset>>;
  constructor(opts: ExternalDatasetCacheOptions = {}) {
    this.lru = new LRUCache<string, Promise<ExternalDataset>>({
      max: opts.max ?? 64,
      ttl: opts.ttlMs ?? 10 * 60_000,
      dispose: (p) => {
        p.then((d) => d.source.close?.()).catch(() => undefined);
      },
    });
  }

  get(url: string, name: string, open: SourceOpener): Promise<ExternalDataset> {
    const key = `${url}\0${name}`;
    let p = this.lru.get(key);
    if (!p) {
      p = openExternalDataset(url, name, open);
      p.catch(() => this.lru.delete(key));
      this.lru.set(key, p);
    }
    return p;
  }

  clear(): void {
    this.lru.clear();
  }
}

let sharedExternal: ExternalDatasetCache | null = null;

export function defaultExternalDatasetCache(): ExternalDatasetCache {
  sharedExternal ??= new ExternalDatasetCache();
  return sharedExternal;
}

export async function openExternalDataset(url: string, name: string, open: SourceOpener): Promise<ExternalDataset> {
  const source = await open(url);
  try {
    const reader = await Hdf5LayoutReader.open(source);
    const address = await resolveHdf5Path(reader, name);
    const info = await reader.readDataset(address);
    let chunks: Map<string, ChunkRecord> | null = null;
    if (info.layout.kind === "chunked") {
      chunks = new Map();
      for (const c of await reader.listChunks(info)) chunks.set(c.index.join(","), c);
    }
    return { url, name, source, reader, info, chunks };
  } catch (e) {
    await source.close?.();
    throw e;
  }
}

// ---------------------------------------------------------------------------------------
// Copying selected elements

/** Selected positions of one dimension inside [lo, hi): output position and position relative to lo. */
function positionsIn(d: DimSelection, lo: number, hi: number): { out: number[]; src: number[] } {
  if (d.kind === "index") return d.index >= lo && d.index < hi ? { out: [0], src: [d.index - lo] } : { out: [], src: [] };
  const out: number[] = [];
  const src: number[] = [];
  if (d.count === 0) return { out, src };
  // first k with start + k*step >= lo
  let k = d.start >= lo ? 0 : Math.ceil((lo - d.start) / d.step);
  for (let pos = d.start + k * d.step; k < d.count && pos < hi; k++, pos += d.step) {
    out.push(k);
    src.push(pos - lo);
  }
  return { out, src };
}

function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
}

/**
 * Copies the selected elements of a block (a chunk, or the whole array) into
 * `out` (C order of the selection's output shape). `origin` = the block's
 * position in the array, `blockShape` = its (full, allocated) shape.
 */
export function copySelected(
  out: Uint8Array,
  block: Uint8Array,
  origin: readonly number[],
  blockShape: readonly number[],
  sel: Selection,
  itemsize: number,
): void {
  const ndim = blockShape.length;
  if (ndim === 0) {
    out.set(block.subarray(0, itemsize), 0);
    return;
  }
  const per = sel.dims.map((d, i) => positionsIn(d, origin[i]!, origin[i]! + blockShape[i]!));
  if (per.some((p) => p.out.length === 0)) return;
  const srcStrides = stridesOf(blockShape);
  // output strides: only kept (slice) dimensions contribute
  const outShapeStrides = stridesOf(sel.shape);
  const outStrides: number[] = [];
  let kept = 0;
  for (const d of sel.dims) outStrides.push(d.kind === "index" ? 0 : outShapeStrides[kept++]!);
  const last = ndim - 1;
  const lastDim = sel.dims[last]!;
  const contiguousLast = lastDim.kind === "slice" && lastDim.step === 1;
  const rec = (dim: number, srcOff: number, outOff: number): void => {
    const p = per[dim]!;
    if (dim === last) {
      if (contiguousLast) {
        const s = (srcOff + p.src[0]! * srcStrides[dim]!) * itemsize;
        const o = (outOff + p.out[0]! * outStrides[dim]!) * itemsize;
        out.set(block.subarray(s, s + p.src.length * itemsize), o);
        return;
      }
      for (let i = 0; i < p.src.length; i++) {
        const s = (srcOff + p.src[i]! * srcStrides[dim]!) * itemsize;
        const o = (outOff + p.out[i]! * outStrides[dim]!) * itemsize;
        out.set(block.subarray(s, s + itemsize), o);
      }
      return;
    }
    for (let i = 0; i < p.src.length; i++) rec(dim + 1, srcOff + p.src[i]! * srcStrides[dim]!, outOff + p.out[i]! * outStrides[dim]!);
  };
  rec(0, 0, 0);
}

/** Chunk grid indices a dimension's selection touches. */
export function chunkIndicesOf(d: DimSelection, chunk: number): number[] {
  if (d.kind === "index") return [Math.floor(d.index / chunk)];
  if (d.count === 0) return [];
  const out: number[] = [];
  if (d.step >= chunk) {
    for (let k = 0, pos = d.start; k < d.count; k++, pos += d.step) out.push(Math.floor(pos / chunk));
    return out;
  }
  const first = Math.floor(d.start / chunk);
  const lastPos = d.start + (d.count - 1) * d.step;
  for (let c = first; c <= Math.floor(lastPos / chunk); c++) out.push(c);
  return out;
}

/** Number of chunks a selection touches (for limits). */
export function chunksTouched(sel: Selection, chunkShape: readonly number[]): number {
  let n = 1;
  sel.dims.forEach((d, i) => {
    const c = chunkShape[i]!;
    if (c <= 0) {
      n = 0;
      return;
    }
    if (d.kind === "index") return;
    if (d.count === 0) {
      n = 0;
      return;
    }
    if (d.step >= c) n *= d.count;
    else n *= Math.floor((d.start + (d.count - 1) * d.step) / c) - Math.floor(d.start / c) + 1;
  });
  return n;
}

/** Cartesian product of index lists (row-major). */
export function* product(lists: number[][]): Generator<number[]> {
  const idx = new Array<number>(lists.length).fill(0);
  if (lists.some((l) => l.length === 0)) return;
  for (;;) {
    yield idx.map((k, d) => lists[d]![k]!);
    let d = lists.length - 1;
    while (d >= 0) {
      if (++idx[d]! < lists[d]!.length) break;
      idx[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

export interface ExternalReadOptions {
  cache: ChunkCache | null;
  concurrency: number;
  /** Refuse to read a contiguous span longer than this many bytes. */
  maxSpanBytes: number;
  signal?: AbortSignal;
}

/** `count` copies of the fill value in file byte order (zeros when none). */
function fillBytes(count: number, itemsize: number, fill: Uint8Array | null): Uint8Array {
  const out = new Uint8Array(count * itemsize);
  if (fill && fill.length >= itemsize && fill.subarray(0, itemsize).some((b) => b !== 0)) {
    for (let i = 0; i < count; i++) out.set(fill.subarray(0, itemsize), i * itemsize);
  }
  return out;
}

/**
 * The selected elements of an external dataset, C order, in the file's byte
 * order (`itemsize` bytes each).
 */
export async function readExternalSelection(ds: ExternalDataset, sel: Selection, itemsize: number, opts: ExternalReadOptions): Promise<Uint8Array> {
  const { info } = ds;
  const shape = info.shape ?? [];
  if (info.elementSize !== itemsize) {
    throw new Error(`external dataset ${ds.name}: element size ${info.elementSize} differs from the .zarray dtype's ${itemsize}`);
  }
  const fill = info.fillValue.bytes;
  const out = fillBytes(sel.count, itemsize, fill);
  if (sel.count === 0) return out;
  const read = (offset: number, length: number): Promise<Uint8Array> => {
    const fetch = async () => {
      opts.signal?.throwIfAborted();
      const b = await ds.source.read(offset, length);
      if (b.length < length) throw new Error(`external dataset ${ds.name}: ${length} bytes at ${offset} extend past the end of ${ds.url}`);
      return b;
    };
    return opts.cache ? opts.cache.getOrFetch(ds.url, offset, length, fetch) : fetch();
  };
  const layout = info.layout;
  switch (layout.kind) {
    case "compact":
      copySelected(out, layout.data, shape.map(() => 0), shape, sel, itemsize);
      return out;
    case "virtual":
      throw new Error(`external dataset ${ds.name} is a virtual dataset, which is not supported`);
    case "contiguous": {
      if (info.externalFiles) throw new Error(`external dataset ${ds.name} keeps its data in external raw files`);
      if (layout.address === null) return out;
      // the span from the first to the last selected element
      const strides = stridesOf(shape);
      let first = 0;
      let lastEl = 0;
      sel.dims.forEach((d, i) => {
        const lo = d.kind === "index" ? d.index : d.start;
        const hi = d.kind === "index" ? d.index : d.start + (d.count - 1) * d.step;
        first += lo * strides[i]!;
        lastEl += hi * strides[i]!;
      });
      const spanBytes = (lastEl - first + 1) * itemsize;
      if (spanBytes > opts.maxSpanBytes) {
        throw new Error(`external dataset ${ds.name}: the selection spans ${spanBytes} bytes of contiguous data (limit ${opts.maxSpanBytes})`);
      }
      const bytes = await read(layout.address + first * itemsize, spanBytes);
      let o = 0;
      const rec = (dim: number, el: number): void => {
        if (dim === shape.length) {
          const at = (el - first) * itemsize;
          out.set(bytes.subarray(at, at + itemsize), o * itemsize);
          o++;
          return;
        }
        const d = sel.dims[dim]!;
        if (d.kind === "index") rec(dim + 1, el + d.index * strides[dim]!);
        else for (let k = 0, pos = d.start; k < d.count; k++, pos += d.step) rec(dim + 1, el + pos * strides[dim]!);
      };
      rec(0, 0);
      return out;
    }
    case "chunked": {
      const chunkShape = layout.chunkShape;
      const chunkBytes = chunkShape.reduce((a, b) => a * b, 1) * itemsize;
      const lists = sel.dims.map((d, i) => chunkIndicesOf(d, chunkShape[i]!));
      const needed: ChunkRecord[] = [];
      for (const index of product(lists)) {
        const rec = ds.chunks?.get(index.join(","));
        if (rec) needed.push(rec); // never written: fill value (already in `out`)
      }
      // over HTTP, fetch the chunks with few requests: nearby ranges are merged
      const source = ds.source as ByteSource & { readMany?: (r: { offset: number; length: number }[]) => Promise<Uint8Array[]> };
      if (opts.cache && typeof source.readMany === "function" && needed.length > 1) {
        const ranges = needed.map((r) => ({ offset: r.offset, length: r.size }));
        for (let i = 0; i < ranges.length; i += 1024) {
          void opts.cache.prefetchMany(ds.url, ranges.slice(i, i + 1024), (missing) => source.readMany!(missing));
        }
      }
      await forEachLimited(needed, opts.concurrency, async (rec) => {
        const index = rec.index;
        const stored = await read(rec.offset, rec.size);
        let decoded: Uint8Array;
        try {
          decoded = await decodeChunk(stored, info.filters, rec.filterMask, itemsize, chunkBytes);
        } catch (e) {
          throw new Error(`external dataset ${ds.name}: chunk ${rec.index.join(".")} cannot be decoded: ${e instanceof Error ? e.message : String(e)}`, { cause: e });
        }
        if (decoded.length < chunkBytes) {
          throw new Error(`external dataset ${ds.name}: chunk ${index.join(".")} decodes to ${decoded.length} bytes, expected ${chunkBytes}`);
        }
        copySelected(out, decoded, index.map((g, d) => g * chunkShape[d]!), chunkShape, sel, itemsize);
      });
      return out;
    }
  }
}
