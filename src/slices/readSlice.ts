/**
 * Decoded values of a selection of one dataset of a LINDI document.
 *
 *   readSlice(doc, "/acquisition/ts/data", "0:100,::2", { rangeReader }) →
 *     { dtype: "<f4", shape: [100, 8], data: Float32Array(800), path: "acquisition/ts/data" }
 *
 * Reading goes through zarrita (zarr.Array over a LindiRefStore, codecs from
 * codecs.ts) for every array Zarr can describe. LINDI/HDF5 features Zarr
 * lacks are layered on top:
 *
 *   _SOFT_LINK          groups carrying it are followed (in any path component)
 *   _SCALAR             shape [1] in Zarr → shape [] here
 *   _COMPOUND_DTYPE     json2 rows → JS objects {field: value}; dtype is numpy's
 *                       descr text, e.g. "[('x', '<i4'), ('y', '<f8')]"
 *   _EXTERNAL_ARRAY_LINK data read from the HDF5 file itself (external.ts)
 *   zero-size arrays    answered without I/O (zarrita fails on them)
 *   float16             read as uint16 bits (Node 20 has no Float16Array)
 *
 * What `data` holds, by dtype kind:
 *   i, u, f  a typed array of the values (int64/uint64 → BigInt64Array / BigUint64Array;
 *            big-endian data is already swapped: the typed array holds the values, and
 *            `dtype` still says ">…" unless dtype "safe" is asked; float16 → Uint16Array
 *            of IEEE half bits unless "safe", which gives Float32Array)
 *   b        Uint8Array of 0/1
 *   S, U     string[] (|S: trailing NULs removed, decoded as UTF-8 if valid, else one
 *            character per byte, U+0000–U+00FF, so nothing is lost); `bytes` holds the
 *            raw fixed-width C-order bytes for bin/npy
 *   O        unknown[]: strings, `{_REFERENCE: …}` objects, or compound rows as objects
 */
import * as zarr from "zarrita";
import { PyFloat, type PyJson } from "../lindi/pythonJson.ts";
import { halfToNumber, type NumericArray } from "../hdf5/values.ts";
import {
  parseDtype,
  readZArray,
  registerLindiCodecs,
  UnsupportedDtypeError,
  zarritaMetadata,
  type ParsedDtype,
  type ZArray,
} from "./codecs.ts";
import {
  chunkIndicesOf,
  chunksTouched,
  product,
  defaultExternalDatasetCache,
  readExternalSelection,
  type ExternalDatasetCache,
  type SourceOpener,
} from "./external.ts";
import { defaultDecodedChunkCache, type DecodedChunkCache } from "./decodedChunks.ts";
import { ChunkCache, defaultChunkCache, LindiRefStore, UnsupportedUrlError, type LindiRefs, type RangeReader } from "./refStore.ts";
import { parseSelection, type Selection } from "./selection.ts";

// ---------------------------------------------------------------------------------------
// Errors

/** No object at the path (the route answers 404). */
export class PathNotFoundError extends Error {
  override readonly name = "PathNotFoundError";
  constructor(
    readonly path: string,
    detail?: string,
  ) {
    super(`no dataset at ${JSON.stringify(path)}${detail ? `: ${detail}` : ""}`);
  }
}

/** The path names a group, not a dataset. */
export class NotADatasetError extends Error {
  override readonly name = "NotADatasetError";
  constructor(readonly path: string) {
    super(`${JSON.stringify(path)} is a group, not a dataset`);
  }
}

/** A stored chunk could not be decoded (bad checksum, corrupt compression, wrong size); `cause` says why. */
export class ChunkDecodeError extends Error {
  override readonly name = "ChunkDecodeError";
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${path}: ${message}`, options);
  }
}

export type SliceLimitName = "maxElements" | "maxBytes" | "maxChunks";

/** The selection is over a configured limit (the route answers 413). */
export class SliceTooLargeError extends Error {
  override readonly name = "SliceTooLargeError";
  constructor(
    /** Which limit. */
    readonly limit: SliceLimitName,
    /** What the selection needs. */
    readonly requested: number,
    /** The limit's value. */
    readonly max: number,
  ) {
    super(`the selection needs ${requested} ${limit === "maxElements" ? "elements" : limit === "maxBytes" ? "bytes" : "chunks"}, over the limit ${limit} = ${max}`);
  }
}

// ---------------------------------------------------------------------------------------
// Types

export type { NumericArray };

export type SliceData = NumericArray | unknown[];

export interface CompoundField {
  name: string;
  /** numpy dtype string of the field ("<i4", "|S6", "|O" for references). */
  dtype: string;
}

export interface SliceResult {
  /** numpy dtype string (`dtype.str`), or the descr text for compound data. */
  dtype: string;
  shape: number[];
  /** C-order values (see the module comment for what each kind holds). */
  data: SliceData;
  /** Raw fixed-width bytes of |S and <U data (C order), for bin/npy. */
  bytes?: Uint8Array;
  /** Fields of compound data (rows in `data` are objects with these keys). */
  fields?: CompoundField[];
  /** The dataset's key after following soft links (no leading slash). */
  path: string;
}

export interface SliceLimits {
  /** Most elements one selection may return. Default 16 777 216. */
  maxElements?: number;
  /** Most bytes of decoded values one selection may return. Default 128 MiB. */
  maxBytes?: number;
  /** Most chunks one selection may touch. Default 65 536. */
  maxChunks?: number;
}

export const DEFAULT_SLICE_LIMITS: Required<SliceLimits> = {
  maxElements: 16 * 1024 * 1024,
  maxBytes: 128 * 1024 * 1024,
  maxChunks: 65_536,
};

export interface ReadSliceOptions extends SliceLimits {
  /** A store over the same document (reuse across calls); else one is built from `rangeReader`. */
  store?: LindiRefStore;
  /** Reads `[url, offset, length]` refs (see refStore.ts for http and file readers). */
  rangeReader?: RangeReader;
  /** Cache of fetched ranges; default the process-wide one; null = none. */
  cache?: ChunkCache | null;
  /** Opens the HDF5 files `_EXTERNAL_ARRAY_LINK`s name (see external.ts `sourceOpener`). */
  openSource?: SourceOpener;
  /** Opened external datasets; default the process-wide cache. */
  externalCache?: ExternalDatasetCache;
  /** Decoded chunks; default the process-wide cache (64 MiB); null = none. */
  decodedCache?: DecodedChunkCache | null;
  /**
   * "native" (default): the stored dtype. "safe": float16 → float32 and
   * big-endian → little-endian (dtype string), for clients that cannot take them.
   */
  dtype?: "native" | "safe";
  /** int64/uint64 → float64 (precision above 2^53 is lost). */
  int64AsFloat64?: boolean;
  /** Chunk fetches in flight for one selection. Default 16. */
  concurrency?: number;
  signal?: AbortSignal;
}

// ---------------------------------------------------------------------------------------
// Resolving paths

const MAX_LINK_HOPS = 32;

function isObject(v: PyJson | undefined): v is Record<string, PyJson> {
  return v !== null && v !== undefined && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
}

function splitPath(path: string): string[] {
  const out: string[] = [];
  for (const c of path.split("/")) {
    if (c === "" || c === ".") continue;
    if (c === "..") out.pop();
    else out.push(c);
  }
  return out;
}

/**
 * The key of `path` after following `_SOFT_LINK` groups in any component
 * (targets resolved from the root when absolute, else from the link's group).
 */
export function resolvePath(store: LindiRefStore, path: string): string {
  let comps = splitPath(path);
  for (let hops = 0; ; hops++) {
    if (hops > MAX_LINK_HOPS) throw new PathNotFoundError(path, "too many soft links");
    let followed = false;
    for (let i = 0; i < comps.length; i++) {
      const prefix = comps.slice(0, i + 1).join("/");
      const attrs = store.json(`${prefix}/.zattrs`);
      if (!isObject(attrs)) continue;
      const link = attrs["_SOFT_LINK"];
      if (!isObject(link)) continue;
      const target = link["path"];
      if (typeof target !== "string") throw new PathNotFoundError(path, `soft link ${prefix} has no target path`);
      const base = target.startsWith("/") ? [] : comps.slice(0, i);
      comps = [...splitPath([...base, target].join("/")), ...comps.slice(i + 1)];
      followed = true;
      break;
    }
    if (!followed) return comps.join("/");
  }
}

interface DatasetMeta {
  key: string;
  zarray: ZArray;
  attrs: Record<string, PyJson>;
}

/**
 * What readSlice works out per dataset before reading (resolved path, parsed
 * .zarray, description, zarrita arrays), kept per store: a store's refs do not
 * change, and a dashboard reads the same datasets over and over.
 */
interface PreparedDataset {
  meta: DatasetMeta;
  info: DatasetInfo;
  /** zarrita arrays by decoded-chunk cache (null: none), made on first read. */
  arrays?: Map<DecodedChunkCache | null, zarr.Array<zarr.DataType, LindiRefStore>>;
}

/** Most prepared datasets kept per store (a document can name 100,000s of datasets). */
const PREPARED_PER_STORE = 4096;
const preparedByStore = new WeakMap<LindiRefStore, Map<string, PreparedDataset>>();

function prepared(store: LindiRefStore, path: string): PreparedDataset {
  let byPath = preparedByStore.get(store);
  if (!byPath) preparedByStore.set(store, (byPath = new Map()));
  let p = byPath.get(path);
  if (p) return p;
  const meta = datasetMeta(store, path);
  p = { meta, info: describe(meta) };
  if (byPath.size >= PREPARED_PER_STORE) byPath.delete(byPath.keys().next().value!);
  byPath.set(path, p);
  return p;
}

function datasetMeta(store: LindiRefStore, path: string): DatasetMeta {
  const key = resolvePath(store, path);
  const prefix = key === "" ? "" : `${key}/`;
  const raw = store.json(`${prefix}.zarray`);
  if (raw === undefined) {
    if (store.has(`${prefix}.zgroup`)) throw new NotADatasetError(key === "" ? "/" : key);
    throw new PathNotFoundError(path);
  }
  let zarray: ZArray;
  try {
    zarray = readZArray(raw);
  } catch (e) {
    throw new Error(`${key}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const attrs = store.json(`${prefix}.zattrs`);
  return { key, zarray, attrs: isObject(attrs) ? attrs : {} };
}

// ---------------------------------------------------------------------------------------
// dtype helpers

const NUMPY_NAME_TO_STR: Record<string, string> = {
  int8: "|i1",
  int16: "<i2",
  int32: "<i4",
  int64: "<i8",
  uint8: "|u1",
  uint16: "<u2",
  uint32: "<u4",
  uint64: "<u8",
  float16: "<f2",
  float32: "<f4",
  float64: "<f8",
  bool: "|b1",
  "<REFERENCE>": "|O",
};

function compoundFields(v: PyJson): CompoundField[] {
  if (!Array.isArray(v)) throw new Error("_COMPOUND_DTYPE is not a list");
  return v.map((f) => {
    if (!Array.isArray(f) || typeof f[0] !== "string" || typeof f[1] !== "string") throw new Error("_COMPOUND_DTYPE entry is not [name, type]");
    const t = f[1];
    return { name: f[0], dtype: NUMPY_NAME_TO_STR[t] ?? t };
  });
}

/** numpy's `str(dtype.descr)` for a compound dtype. */
export function compoundDescr(fields: CompoundField[]): string {
  return `[${fields.map((f) => `('${f.name.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}', '${f.dtype}')`).join(", ")}]`;
}

function typedFromBytes(bytes: Uint8Array, d: ParsedDtype): NumericArray {
  // copy into an aligned buffer, swapping big-endian elements
  const b = bytes.slice();
  if (d.order === ">" && d.itemsize > 1) {
    for (let i = 0; i + d.itemsize <= b.length; i += d.itemsize) b.subarray(i, i + d.itemsize).reverse();
  }
  const n = b.length / d.itemsize;
  const buf = b.buffer;
  switch (`${d.kind}${d.itemsize}`) {
    case "i1":
      return new Int8Array(buf, 0, n);
    case "u1":
    case "b1":
      return new Uint8Array(buf, 0, n);
    case "i2":
      return new Int16Array(buf, 0, n);
    case "u2":
    case "f2":
      return new Uint16Array(buf, 0, n);
    case "i4":
      return new Int32Array(buf, 0, n);
    case "u4":
      return new Uint32Array(buf, 0, n);
    case "i8":
      return new BigInt64Array(buf, 0, n);
    case "u8":
      return new BigUint64Array(buf, 0, n);
    case "f4":
      return new Float32Array(buf, 0, n);
    case "f8":
      return new Float64Array(buf, 0, n);
  }
  throw new UnsupportedDtypeError(d.str);
}

function emptyData(d: ParsedDtype): SliceData {
  if (d.kind === "O" || d.kind === "S" || d.kind === "U") return [];
  return typedFromBytes(new Uint8Array(0), d);
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** UTF-8 when the bytes are valid UTF-8, else one character per byte (lossless). */
function decodeBytes(b: Uint8Array): string {
  try {
    return utf8.decode(b);
  } catch {
    return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("latin1");
  }
}

function decodeFixedStrings(bytes: Uint8Array, d: ParsedDtype): string[] {
  const n = d.itemsize === 0 ? 0 : bytes.length / d.itemsize;
  const out = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const el = bytes.subarray(i * d.itemsize, (i + 1) * d.itemsize);
    if (d.kind === "S") {
      let end = el.length;
      while (end > 0 && el[end - 1] === 0) end--;
      out[i] = decodeBytes(el.subarray(0, end));
    } else {
      const view = new DataView(el.buffer, el.byteOffset, el.byteLength);
      let s = "";
      for (let k = 0; k + 4 <= el.length; k += 4) {
        const cp = view.getUint32(k, true);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      out[i] = s;
    }
  }
  return out;
}

/** Applies dtype "safe" / int64AsFloat64 to numeric data. */
function convertDtype(data: SliceData, d: ParsedDtype, opts: ReadSliceOptions): { data: SliceData; dtype: string } {
  const safe = opts.dtype === "safe";
  if (d.kind === "f" && d.itemsize === 2 && safe) {
    const bits = data as Uint16Array;
    const out = new Float32Array(bits.length);
    for (let i = 0; i < bits.length; i++) out[i] = halfToNumber(bits[i]!);
    return { data: out, dtype: "<f4" };
  }
  if ((d.kind === "i" || d.kind === "u") && d.itemsize === 8 && opts.int64AsFloat64) {
    const big = data as BigInt64Array | BigUint64Array;
    const out = new Float64Array(big.length);
    for (let i = 0; i < big.length; i++) out[i] = Number(big[i]!);
    return { data: out, dtype: "<f8" };
  }
  if (safe && d.order === ">") return { data, dtype: `<${d.str.slice(1)}` };
  return { data, dtype: d.str };
}

function outputItemBytes(d: ParsedDtype | undefined, fields: CompoundField[] | undefined, opts: Pick<ReadSliceOptions, "dtype">): number {
  if (fields || !d) return 8 * Math.max(1, fields?.length ?? 1);
  if (d.kind === "O") return 8;
  if (d.kind === "f" && d.itemsize === 2 && opts.dtype === "safe") return 4;
  return d.itemsize;
}

// ---------------------------------------------------------------------------------------
// zarrita plumbing

/** zarrita's chunk queue interface (not exported by the package root). */
interface ChunkQueue {
  add(fn: () => Promise<void>): void;
  onIdle(): Promise<Array<void>>;
}

function limitedQueue(limit: number): ChunkQueue {
  const results: Promise<void>[] = [];
  let active = 0;
  const waiting: (() => void)[] = [];
  return {
    add(fn) {
      results.push(
        (async () => {
          while (active >= limit) await new Promise<void>((r) => waiting.push(r));
          active++;
          try {
            await fn();
          } finally {
            active--;
            waiting.shift()?.();
          }
        })(),
      );
    },
    onIdle: () => Promise.all(results),
  };
}

interface RawRead {
  /** typed array, BoolArray, string arrays or a JS array, as zarrita returns them. */
  data: unknown;
}

/**
 * Serves decoded chunks from (and puts them into) a DecodedChunkCache. Inline
 * object chunks matter most: LINDI keeps every vlen-string / reference /
 * compound dataset as one inline chunk, so a client paging through a large
 * table would otherwise re-parse the whole JSON payload on every request.
 * zarrita copies chunks into a new output array, so cached chunks are never
 * handed out for writing.
 */
const withDecodedChunkCache = zarr.defineArrayExtension((array, opts: { cache: DecodedChunkCache; refs: object; key: string }) => ({
  async getChunk(coords: number[], ...rest: unknown[]) {
    const cacheKey = opts.cache.keyOf(opts.refs, `${opts.key}/${coords.join(".") || "0"}`);
    const hit = opts.cache.get(cacheKey);
    if (hit) return hit;
    const chunk = await (array.getChunk as (c: number[], ...r: unknown[]) => ReturnType<typeof array.getChunk>)(coords, ...rest);
    opts.cache.set(cacheKey, chunk);
    return chunk;
  },
}));

/** The dataset's zarrita array (reading through `decodedCache` unless null), made once per store. */
function zarritaArray(store: LindiRefStore, ds: PreparedDataset, decodedCache: DecodedChunkCache | null): zarr.Array<zarr.DataType, LindiRefStore> {
  ds.arrays ??= new Map();
  let arr = ds.arrays.get(decodedCache);
  if (arr) return arr;
  const meta = ds.meta;
  // zarrita resolves chunk keys with `new URL(key, "file://<array path>/")` and
  // decodes the result: give it the path percent-encoded, or names with '#',
  // '?' or '%' (e.g. MATLAB's "#refs#") would be cut or mangled
  const encoded = `/${meta.key.split("/").map(encodeURIComponent).join("/")}` as `/${string}`;
  const plain = new zarr.Array(store, encoded, zarritaMetadata(meta.zarray));
  arr = decodedCache ? withDecodedChunkCache(plain, { cache: decodedCache, refs: store.refs, key: meta.key }) : plain;
  ds.arrays.set(decodedCache, arr);
  return arr;
}

async function readWithZarrita(store: LindiRefStore, ds: PreparedDataset, sel: Selection, scalar: boolean, opts: ReadSliceOptions): Promise<RawRead> {
  const meta = ds.meta;
  const decodedCache = opts.decodedCache === undefined ? defaultDecodedChunkCache() : opts.decodedCache;
  const arr = zarritaArray(store, ds, decodedCache);
  let zsel: (number | zarr.Slice)[];
  if (scalar) {
    zsel = [zarr.slice(0, 1)];
  } else {
    zsel = sel.dims.map((d) => (d.kind === "index" ? d.index : zarr.slice(d.start, d.stop, d.step)));
    // an all-index selection would make zarrita return a bare scalar: keep one length-1 axis
    if (sel.shape.length === 0 && zsel.length > 0) {
      const last = zsel.length - 1;
      const i = zsel[last] as number;
      zsel[last] = zarr.slice(i, i + 1);
    }
  }
  // start fetching the selection's chunks together (merged requests over HTTP)
  const sep = meta.zarray.dimension_separator ?? ".";
  const keys: string[] = [];
  if (scalar) keys.push(`${meta.key}/0`);
  else for (const idx of product(sel.dims.map((d, i) => chunkIndicesOf(d, meta.zarray.chunks[i]!)))) keys.push(`${meta.key}/${idx.join(sep)}`);
  // (one chunk: nothing to merge)
  const prefetch = keys.length > 1 ? store.prefetch(keys, opts.signal) : undefined;
  const concurrency = opts.concurrency ?? 16;
  let res: unknown;
  try {
    res = await zarr.get(arr, zsel, {
      createQueue: () => limitedQueue(concurrency),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
  } catch (e) {
    if (zarr.isZarritaError(e, "CodecPipelineError")) {
      const cause = (e as Error).cause;
      throw new ChunkDecodeError(meta.key, `${(e as Error).message}${cause instanceof Error ? `: ${cause.message}` : ""}`, { cause });
    }
    throw e;
  }
  await prefetch;
  return { data: (res as { data: unknown }).data };
}

/** Normalizes what zarrita returns into SliceData (+ raw bytes for fixed strings). */
function normalizeData(raw: unknown, d: ParsedDtype): { data: SliceData; bytes?: Uint8Array } {
  if (Array.isArray(raw)) return { data: raw };
  const view = raw as { buffer: ArrayBufferLike; byteOffset: number; byteLength: number };
  if (d.kind === "S" || d.kind === "U") {
    const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength).slice();
    return { data: decodeFixedStrings(bytes, d), bytes };
  }
  if (d.kind === "b") return { data: new Uint8Array(view.buffer, view.byteOffset, view.byteLength) };
  return { data: raw as NumericArray };
}

// ---------------------------------------------------------------------------------------

/** Bytes per element of readSlice's answer for this dataset (8 per object or compound field). */
export function answerItemBytes(info: Pick<DatasetInfo, "dtype" | "fields">, dtype: ReadSliceOptions["dtype"] = "native"): number {
  return outputItemBytes(info.fields ? undefined : parseDtype(info.dtype), info.fields, { dtype });
}

/** Throws SliceTooLargeError when a selection needs more than the limits allow (readSlice's 413s). */
export function checkSliceLimits(sel: Selection, itemBytes: number, chunks: number, opts: SliceLimits): void {
  const maxElements = opts.maxElements ?? DEFAULT_SLICE_LIMITS.maxElements;
  const maxBytes = opts.maxBytes ?? DEFAULT_SLICE_LIMITS.maxBytes;
  const maxChunks = opts.maxChunks ?? DEFAULT_SLICE_LIMITS.maxChunks;
  if (sel.count > maxElements) throw new SliceTooLargeError("maxElements", sel.count, maxElements);
  if (sel.count * itemBytes > maxBytes) throw new SliceTooLargeError("maxBytes", sel.count * itemBytes, maxBytes);
  if (chunks > maxChunks) throw new SliceTooLargeError("maxChunks", chunks, maxChunks);
}

function storeFor(doc: LindiRefs, opts: ReadSliceOptions): LindiRefStore {
  if (opts.store) return opts.store;
  const rangeReader: RangeReader =
    opts.rangeReader ?? ((url) => Promise.reject(new UnsupportedUrlError(url, "no range reader configured")));
  return new LindiRefStore(doc, { rangeReader, cache: opts.cache === undefined ? defaultChunkCache() : opts.cache });
}

/** Shape, dtype and LINDI annotations of a dataset, without reading data. */
export interface DatasetInfo {
  path: string;
  /** Logical shape ([] for `_SCALAR`). */
  shape: number[];
  /** numpy dtype string as stored (descr text for compound). */
  dtype: string;
  chunks: number[];
  fields?: CompoundField[];
  scalar: boolean;
  externalLink?: { url: string; name: string };
}

/** With `store`, the result is shared by later calls on that store: do not mutate it. */
export function datasetInfo(doc: LindiRefs, path: string, opts: Pick<ReadSliceOptions, "store"> = {}): DatasetInfo {
  if (opts.store) return prepared(opts.store, path).info;
  const store = new LindiRefStore(doc, { rangeReader: () => Promise.reject(new Error("no reads")), cache: null });
  return describe(datasetMeta(store, path));
}

function describe(meta: DatasetMeta): DatasetInfo {
  const scalar = meta.attrs["_SCALAR"] === true;
  const fields = meta.attrs["_COMPOUND_DTYPE"] !== undefined ? compoundFields(meta.attrs["_COMPOUND_DTYPE"]) : undefined;
  const link = meta.attrs["_EXTERNAL_ARRAY_LINK"];
  let externalLink: DatasetInfo["externalLink"];
  if (isObject(link)) {
    const url = link["url"];
    const name = link["name"];
    if (typeof url !== "string" || typeof name !== "string") throw new Error(`${meta.key}: _EXTERNAL_ARRAY_LINK without url and name`);
    if (link["link_type"] !== undefined && link["link_type"] !== "hdf5_dataset") {
      throw new Error(`${meta.key}: unsupported external link type ${String(link["link_type"])}`);
    }
    externalLink = { url, name };
  }
  return {
    path: meta.key,
    shape: scalar ? [] : meta.zarray.shape,
    dtype: fields ? compoundDescr(fields) : meta.zarray.dtype,
    chunks: meta.zarray.chunks,
    ...(fields ? { fields } : {}),
    scalar,
    ...(externalLink ? { externalLink } : {}),
  };
}

/**
 * Reads `selection` (h5grove syntax, see selection.ts; empty = everything) of
 * the dataset at `path`.
 */
export async function readSlice(doc: LindiRefs, path: string, selection: string | Selection | null | undefined, opts: ReadSliceOptions = {}): Promise<SliceResult> {
  registerLindiCodecs();
  const store = storeFor(doc, opts);
  const ds = prepared(store, path);
  const { meta, info } = ds;
  const d = parseDtype(meta.zarray.dtype);
  if (info.fields && d.kind !== "O") throw new UnsupportedDtypeError(meta.zarray.dtype, "with _COMPOUND_DTYPE is not an object array");
  if (info.scalar && meta.zarray.shape.length !== 1) throw new Error(`${meta.key}: _SCALAR array of shape [${meta.zarray.shape.join(", ")}]`);
  const sel = typeof selection === "object" && selection !== null ? selection : parseSelection(selection, info.shape);
  if (sel.dims.length !== info.shape.length) throw new Error(`selection has ${sel.dims.length} dimensions, the dataset ${info.shape.length}`);

  const chunks = sel.count === 0 ? 0 : info.scalar ? 1 : chunksTouched(sel, meta.zarray.chunks);
  checkSliceLimits(sel, outputItemBytes(d, info.fields, opts), chunks, opts);
  opts.signal?.throwIfAborted();

  let data: SliceData;
  let bytes: Uint8Array | undefined;
  if (sel.count === 0) {
    data = emptyData(d);
    if (d.kind === "S" || d.kind === "U") bytes = new Uint8Array(0);
  } else if (info.externalLink) {
    if (d.kind === "O" || d.kind === "S" || d.kind === "U") throw new UnsupportedDtypeError(d.str, "in an external array link is not supported");
    if (!opts.openSource) throw new UnsupportedUrlError(info.externalLink.url, "no source opener configured for external array links");
    const ext = await (opts.externalCache ?? defaultExternalDatasetCache()).get(info.externalLink.url, info.externalLink.name, opts.openSource);
    const raw = await readExternalSelection(ext, sel, d.itemsize, {
      cache: opts.cache === undefined ? defaultChunkCache() : opts.cache,
      concurrency: opts.concurrency ?? 16,
      maxSpanBytes: 4 * (opts.maxBytes ?? DEFAULT_SLICE_LIMITS.maxBytes),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    data = typedFromBytes(raw, d);
  } else {
    const raw = await readWithZarrita(store, ds, sel, info.scalar, opts);
    ({ data, bytes } = normalizeData(raw.data, d));
  }

  if (info.fields) {
    const names = info.fields.map((f) => f.name);
    data = (data as unknown[]).map((row, i) => {
      if (!Array.isArray(row) || row.length !== names.length) {
        throw new Error(`${meta.key}: compound row ${i} does not have ${names.length} fields`);
      }
      const o: Record<string, unknown> = {};
      names.forEach((n, k) => (o[n] = row[k]));
      return o;
    });
    return { dtype: info.dtype, shape: sel.shape, data, fields: info.fields, path: meta.key };
  }
  const converted = convertDtype(data, d, opts);
  const out: SliceResult = { dtype: converted.dtype, shape: sel.shape, data: converted.data, path: meta.key };
  if (bytes) out.bytes = bytes;
  return out;
}
