/**
 * A zarrita-compatible store (`get(key) → bytes | undefined`) over the refs of
 * a LINDI document (spec §3):
 *
 *   object value          → its JSON text (Python `json.dumps` style, compact)
 *   string value          → inline bytes (`base64:` prefix or UTF-8 of the string)
 *   [url, offset, length] → bytes fetched through a pluggable range reader
 *                           ({{name}} templates expanded first)
 *
 * Fetched ranges go through a ChunkCache (an LRU bounded in bytes, meant to be
 * shared by every request of a process; concurrent misses of the same range
 * share one fetch).
 *
 * Short last pieces of split datasets (spec §5.7) are zero-padded to the full
 * chunk size, but only for arrays without filters and compressor: padding a
 * compressed or checksummed chunk corrupts it (lindi pads those too and then
 * cannot read gzip + fletcher32 data it generated, spec §9.3).
 */
import { open } from "node:fs/promises";
import { isAbsolute, resolve as resolvePath } from "node:path";
import { fileURLToPath } from "node:url";
import { LRUCache } from "lru-cache";
import type { HttpClient, HttpByteSource, OpenHttpSourceOptions } from "../hdf5/httpByteSource.ts";
import { openHttpSource, SourceChangedError } from "../hdf5/httpByteSource.ts";
import { decodeInlineBytes } from "../lindi/inlineBytes.ts";
import { parsePythonJson, PyFloat, stringifyPythonCompact, type PyJson } from "../lindi/pythonJson.ts";

export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Reads `length` bytes at `offset` of `url` (all of them, or throws).
 * Optionally `many`: several ranges of one URL at once (nearby ranges merged
 * into one request), results in the order asked.
 */
export type RangeReader = ((url: string, offset: number, length: number, signal?: AbortSignal) => Promise<Uint8Array>) & {
  many?: (url: string, ranges: readonly ByteRange[], signal?: AbortSignal, onRange?: OnRange) => Promise<Uint8Array[]>;
};

/**
 * Called by a `many` reader that streams: range `index` (of the ranges asked)
 * has arrived whole, before the call resolves. Readers may not call it at
 * all; the result array still holds every range.
 */
export type OnRange = (index: number, bytes: Uint8Array) => void;

/** Most ranges handed to one `many` call. */
const MANY_BATCH = 1024;
/**
 * Prefetched ranges of one URL go out in up to PREFETCH_PARALLEL calls of at
 * least PREFETCH_MIN_BYTES each: an object store caps each connection at tens
 * of MB/s, so parallel requests beat one large one.
 */
const PREFETCH_MIN_BYTES = 256 * 1024;
const PREFETCH_PARALLEL = 16;

/** The refs (and templates) of a LINDI document; `LindiDocument` fits. */
export interface LindiRefs {
  refs: Record<string, PyJson>;
  templates?: Record<string, string>;
}

/** A ref value that is not one of the three allowed forms, or a URL no reader handles. */
export class InvalidRefError extends Error {
  override readonly name = "InvalidRefError";
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(`ref ${JSON.stringify(key)}: ${message}`);
  }
}

/** A byte range could not be read in full (the source is shorter than the ref says). */
export class ShortReadError extends Error {
  override readonly name = "ShortReadError";
  constructor(
    readonly url: string,
    readonly offset: number,
    readonly length: number,
    readonly got: number,
  ) {
    super(`range ${offset}+${length} of ${url}: only ${got} bytes could be read`);
  }
}

/** A ref URL whose scheme the configured readers do not serve. */
export class UnsupportedUrlError extends Error {
  override readonly name = "UnsupportedUrlError";
  constructor(
    readonly url: string,
    reason: string,
  ) {
    super(`cannot read ${url}: ${reason}`);
  }
}

/** Where the bytes of one key live. */
export type RefLocation =
  | { kind: "json"; value: PyJson }
  | { kind: "inline"; bytes: Uint8Array }
  | { kind: "range"; url: string; offset: number; length: number };

// ---------------------------------------------------------------------------------------
// Cache

export interface ChunkCacheStats {
  hits: number;
  misses: number;
  /** Bytes fetched by misses. */
  fetchedBytes: number;
}

export interface ChunkCacheOptions {
  /** Total bytes kept. Default 256 MiB. */
  maxBytes?: number;
  /** Larger ranges are fetched but not kept. Default maxBytes / 4. */
  maxEntryBytes?: number;
}

/**
 * Fetched chunk bytes by (url, offset, length), bounded in bytes (LRU). One
 * instance is meant to be shared by all requests of a process.
 */
export class ChunkCache {
  readonly stats: ChunkCacheStats = { hits: 0, misses: 0, fetchedBytes: 0 };
  private readonly lru: LRUCache<string, Uint8Array>;
  private readonly inflight = new Map<string, Promise<Uint8Array>>();

  constructor(opts: ChunkCacheOptions = {}) {
    const maxSize = Math.max(1, opts.maxBytes ?? 256 * 1024 * 1024);
    this.lru = new LRUCache<string, Uint8Array>({
      maxSize,
      maxEntrySize: Math.max(1, Math.min(maxSize, opts.maxEntryBytes ?? Math.floor(maxSize / 4))),
      sizeCalculation: (b) => Math.max(1, b.byteLength),
    });
  }

  /** Bytes held now. */
  get size(): number {
    return this.lru.calculatedSize;
  }

  clear(): void {
    this.lru.clear();
  }

  private keyOf(url: string, offset: number, length: number): string {
    return `${offset}:${length}:${url}`;
  }

  /** True when the range is cached or being fetched. */
  has(url: string, offset: number, length: number): boolean {
    const key = this.keyOf(url, offset, length);
    return this.lru.has(key) || this.inflight.has(key);
  }

  /**
   * Fetches the ranges of `url` that are neither cached nor in flight with
   * one `fetchMany` call (so nearby ranges can share requests); later
   * `getOrFetch` calls for them wait for it. A range is usable as soon as it
   * arrives: through `fetchMany`'s `onRange` when the reader streams (decoding
   * then overlaps the transfer of the rest), else when the call resolves.
   * Errors surface in `getOrFetch`, not here.
   */
  prefetchMany(url: string, ranges: readonly ByteRange[], fetchMany: (ranges: ByteRange[], onRange: OnRange) => Promise<Uint8Array[]>): Promise<void> {
    const missing: ByteRange[] = [];
    const seen = new Set<string>();
    for (const r of ranges) {
      const key = this.keyOf(url, r.offset, r.length);
      if (r.length === 0 || seen.has(key) || this.lru.has(key) || this.inflight.has(key)) continue;
      seen.add(key);
      missing.push(r);
    }
    if (missing.length === 0) return Promise.resolve();
    this.stats.misses += missing.length;
    const pending = missing.map((r) => {
      const key = this.keyOf(url, r.offset, r.length);
      let settle!: { resolve: (b: Uint8Array) => void; reject: (e: unknown) => void };
      const p = new Promise<Uint8Array>((resolve, reject) => (settle = { resolve, reject })).finally(() => this.inflight.delete(key));
      p.catch(() => undefined);
      this.inflight.set(key, p);
      return { key, range: r, settle, done: false };
    });
    const deliver: OnRange = (i, b) => {
      const e = pending[i];
      if (!e || e.done) return;
      e.done = true;
      if (b.byteLength < e.range.length) {
        e.settle.reject(new ShortReadError(url, e.range.offset, e.range.length, b.byteLength));
        return;
      }
      // merged reads are views of a larger buffer: keep only this range
      const own = b.byteLength === b.buffer.byteLength ? b : b.slice();
      this.stats.fetchedBytes += own.byteLength;
      this.lru.set(e.key, own);
      e.settle.resolve(own);
    };
    let batch: Promise<Uint8Array[]>;
    try {
      batch = fetchMany(missing, deliver);
    } catch (e) {
      batch = Promise.reject(e);
    }
    return batch.then(
      (all) => all.forEach((b, i) => deliver(i, b)),
      (err: unknown) => {
        for (const e of pending) {
          if (e.done) continue;
          e.done = true;
          e.settle.reject(err);
        }
      },
    );
  }

  /** The cached bytes of the range, or `fetch()`'s (stored when they fit). Do not mutate the result. */
  async getOrFetch(url: string, offset: number, length: number, fetch: () => Promise<Uint8Array>): Promise<Uint8Array> {
    const key = this.keyOf(url, offset, length);
    const hit = this.lru.get(key);
    if (hit) {
      this.stats.hits++;
      return hit;
    }
    let p = this.inflight.get(key);
    if (p) {
      this.stats.hits++;
      return p;
    }
    this.stats.misses++;
    p = fetch()
      .then((bytes) => {
        this.stats.fetchedBytes += bytes.byteLength;
        this.lru.set(key, bytes);
        return bytes;
      })
      .finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }
}

let sharedCache: ChunkCache | null = null;

/** The process-wide cache used when none is passed (256 MiB). */
export function defaultChunkCache(): ChunkCache {
  sharedCache ??= new ChunkCache();
  return sharedCache;
}

// ---------------------------------------------------------------------------------------
// Range readers

function isHttpUrl(url: string): boolean {
  return /^https?:\/\//i.test(url);
}

/** Local path of a ref URL (`file://` URL or plain path), or null for other schemes. */
export function localPathOf(url: string): string | null {
  if (/^file:\/\//i.test(url)) return fileURLToPath(url);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(url)) return null;
  return url;
}

function checkRange(url: string, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new RangeError(`invalid range ${offset}+${length} of ${url}`);
  }
}

export interface FileRangeReaderOptions {
  /** Relative paths are resolved against this directory (default: the process CWD, as lindi does). */
  baseDir?: string;
  /** Refuse paths for which this returns false (e.g. outside a data directory). */
  allow?: (absPath: string) => boolean;
}

/**
 * Reads local files (plain paths or `file://` URLs). `./…` refs (relative to a
 * `.lindi.tar`/`.lindi.d` container) are refused: a plain JSON document has
 * no container (lindi refuses them too, spec §3.3).
 */
export function fileRangeReader(opts: FileRangeReaderOptions = {}): RangeReader {
  return async (url, offset, length) => {
    checkRange(url, offset, length);
    const p = localPathOf(url);
    if (p === null) throw new UnsupportedUrlError(url, "not a local file path");
    if (p.startsWith("./")) throw new UnsupportedUrlError(url, "a container-relative ref (./…) in a plain LINDI JSON document");
    const abs = isAbsolute(p) ? p : resolvePath(opts.baseDir ?? process.cwd(), p);
    if (opts.allow && !opts.allow(abs)) throw new UnsupportedUrlError(url, "path not allowed");
    const fh = await open(abs, "r");
    try {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      if (done < length) throw new ShortReadError(url, offset, length, done);
      return buf;
    } finally {
      await fh.close();
    }
  };
}

export interface HttpRangeReaderOptions {
  /** Options for each opened source (URL check, auth, ETag check). */
  sourceOptions?: OpenHttpSourceOptions;
  /** Opened sources kept (their size/ETag probe is reused). Default 256. */
  maxSources?: number;
  /** How long an opened source is reused, ms. Default 5 minutes. */
  sourceTtlMs?: number;
}

export interface HttpRangeReader extends RangeReader {
  /** Forgets all opened sources (the client stays open). */
  clear(): void;
}

/**
 * Reads http(s) ranges with the project's HttpClient (retries, redirects,
 * DANDI auth, URL checks). One probed HttpByteSource per URL is kept for a
 * while; a source whose file changed (ETag/size) is dropped and the error
 * passed on.
 */
export function httpRangeReader(client: HttpClient, opts: HttpRangeReaderOptions = {}): HttpRangeReader {
  const sources = new LRUCache<string, Promise<HttpByteSource>>({
    max: opts.maxSources ?? 256,
    ttl: opts.sourceTtlMs ?? 5 * 60_000,
  });
  const sourceFor = (url: string): Promise<HttpByteSource> => {
    let p = sources.get(url);
    if (!p) {
      p = openHttpSource(url, client, opts.sourceOptions);
      p.catch(() => sources.delete(url));
      sources.set(url, p);
    }
    return p;
  };
  const reader = (async (url: string, offset: number, length: number) => {
    checkRange(url, offset, length);
    if (!isHttpUrl(url)) throw new UnsupportedUrlError(url, "not an http(s) URL");
    const src = await sourceFor(url);
    let bytes: Uint8Array;
    try {
      bytes = await src.read(offset, length);
    } catch (e) {
      if (e instanceof SourceChangedError) sources.delete(url);
      throw e;
    }
    if (bytes.byteLength < length) throw new ShortReadError(url, offset, length, bytes.byteLength);
    return bytes;
  }) as HttpRangeReader;
  reader.many = async (url, ranges) => {
    for (const r of ranges) checkRange(url, r.offset, r.length);
    if (!isHttpUrl(url)) throw new UnsupportedUrlError(url, "not an http(s) URL");
    const src = await sourceFor(url);
    try {
      return await src.readMany(ranges);
    } catch (e) {
      if (e instanceof SourceChangedError) sources.delete(url);
      throw e;
    }
  };
  reader.clear = () => sources.clear();
  return reader;
}

export interface RoutingRangeReaderOptions {
  /** Serves http(s) URLs. */
  http?: RangeReader;
  /** Serves local paths and file:// URLs (leave out in a server that must not read local files). */
  file?: RangeReader;
}

/** Dispatches by URL scheme; a scheme without a reader is an UnsupportedUrlError. */
export function routingRangeReader(opts: RoutingRangeReaderOptions): RangeReader {
  const reader: RangeReader = (url, offset, length, signal) => {
    if (isHttpUrl(url)) {
      if (!opts.http) return Promise.reject(new UnsupportedUrlError(url, "http(s) reads are not configured"));
      return opts.http(url, offset, length, signal);
    }
    if (localPathOf(url) !== null) {
      if (!opts.file) return Promise.reject(new UnsupportedUrlError(url, "local file reads are not allowed"));
      return opts.file(url, offset, length, signal);
    }
    return Promise.reject(new UnsupportedUrlError(url, "unsupported URL scheme"));
  };
  const httpMany = opts.http?.many;
  if (httpMany) {
    reader.many = (url, ranges, signal, onRange) => {
      // only http(s) has batched reads; other schemes fall back to single reads
      if (isHttpUrl(url)) return httpMany(url, ranges, signal, onRange);
      return Promise.all(ranges.map((r) => reader(url, r.offset, r.length, signal)));
    };
  }
  return reader;
}

// ---------------------------------------------------------------------------------------
// Store

/** Zarr key for a store path: no leading or trailing slash, no empty components. */
export function normalizeKey(key: string): string {
  // the common cases (every chunk read: "a/b/0.1" or zarrita's "/a/b/0.1"): no split/join
  const k = key.charCodeAt(0) === 47 ? key.slice(1) : key;
  if (k.length > 0 && k.charCodeAt(0) !== 47 && k.charCodeAt(k.length - 1) !== 47 && !k.includes("//")) return k;
  return key
    .split("/")
    .filter((p) => p !== "")
    .join("/");
}

const CHUNK_KEY = /^\d+(\.\d+)*$/;
const encoder = new TextEncoder();

/** Expands `{{name}}` in a ref URL with the document's templates (plain string replacement). */
export function expandTemplates(url: string, templates: Record<string, string> | undefined): string {
  if (!templates || !url.includes("{{")) return url;
  return url.replace(/\{\{([^{}]*)\}\}/g, (m, name: string) => templates[name.trim()] ?? m);
}

/** Parses a metadata value (object, or a JSON string as older kerchunk files store it). */
export function metadataValue(v: PyJson | undefined): PyJson | undefined {
  if (v === undefined) return undefined;
  if (typeof v === "string") return parsePythonJson(new TextDecoder().decode(decodeInlineBytes(v)));
  return v;
}

interface PadInfo {
  /** Full decoded chunk size when short pieces may be zero-padded, else null. */
  padTo: number | null;
}

export interface LindiRefStoreOptions {
  rangeReader: RangeReader;
  /** Shared cache of fetched ranges; default: the process-wide one. Pass null to disable. */
  cache?: ChunkCache | null;
}

/**
 * The store. Keys may carry a leading slash (zarrita asks for `/a/b/.zarray`).
 */
export class LindiRefStore {
  readonly refs: Record<string, PyJson>;
  readonly templates: Record<string, string> | undefined;
  private readonly rangeReader: RangeReader;
  private readonly cache: ChunkCache | null;
  private readonly padInfo = new Map<string, PadInfo>();
  private readonly metaCache = new Map<string, PyJson | undefined>();
  private readonly expandedUrls = new Map<string, string>();

  constructor(doc: LindiRefs, opts: LindiRefStoreOptions) {
    if (!doc || typeof doc.refs !== "object" || doc.refs === null) throw new InvalidRefError("", "the document has no refs");
    this.refs = doc.refs;
    this.templates = doc.templates;
    this.rangeReader = opts.rangeReader;
    this.cache = opts.cache === undefined ? defaultChunkCache() : opts.cache;
  }

  has(key: string): boolean {
    return Object.prototype.hasOwnProperty.call(this.refs, normalizeKey(key));
  }

  /** Where the bytes of `key` are, without reading them; undefined when the key is absent. */
  locate(key: string): RefLocation | undefined {
    const k = normalizeKey(key);
    if (!Object.prototype.hasOwnProperty.call(this.refs, k)) return undefined;
    const v = this.refs[k]!;
    if (typeof v === "string") return { kind: "inline", bytes: decodeInlineBytes(v) };
    if (Array.isArray(v)) {
      if (v.length !== 3) throw new InvalidRefError(k, `a byte-range ref has ${v.length} elements, not 3`);
      const [u, o, l] = v;
      const offset = typeof o === "bigint" ? Number(o) : o;
      const length = typeof l === "bigint" ? Number(l) : l;
      if (typeof u !== "string" || typeof offset !== "number" || typeof length !== "number") {
        throw new InvalidRefError(k, "a byte-range ref must be [string, int, int]");
      }
      if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
        throw new InvalidRefError(k, `invalid range ${String(o)}+${String(l)}`);
      }
      return { kind: "range", url: this.expandUrl(u), offset, length };
    }
    if (v !== null && typeof v === "object" && !(v instanceof PyFloat)) {
      return { kind: "json", value: v };
    }
    throw new InvalidRefError(k, "a ref must be a string, an object or [url, offset, length]");
  }

  /** A ref's URL with templates expanded, memoized (a document names a handful of URLs in 100,000s of refs). */
  private expandUrl(u: string): string {
    if (!u.includes("{{")) return u;
    let e = this.expandedUrls.get(u);
    if (e === undefined) {
      e = expandTemplates(u, this.templates);
      if (this.expandedUrls.size < 1024) this.expandedUrls.set(u, e);
    }
    return e;
  }

  /** A parsed metadata value (`.zarray`, `.zattrs`, `.zgroup`), memoized; undefined when absent. */
  json(key: string): PyJson | undefined {
    const k = normalizeKey(key);
    if (this.metaCache.has(k)) return this.metaCache.get(k);
    let v: PyJson | undefined;
    try {
      v = metadataValue(this.refs[k]);
    } catch (e) {
      throw new InvalidRefError(k, `not valid JSON metadata: ${e instanceof Error ? e.message : String(e)}`);
    }
    this.metaCache.set(k, v);
    return v;
  }

  /** The bytes of `key` (zarrita's store interface); undefined when absent. */
  async get(key: string, opts?: { signal?: AbortSignal }): Promise<Uint8Array | undefined> {
    const loc = this.locate(key);
    if (!loc) return undefined;
    switch (loc.kind) {
      case "json":
        return encoder.encode(stringifyPythonCompact(loc.value, { allowNan: true }));
      case "inline":
        return loc.bytes;
      case "range": {
        const bytes = await this.readRange(loc.url, loc.offset, loc.length, opts?.signal);
        return this.maybePad(normalizeKey(key), bytes);
      }
    }
  }

  /**
   * Starts fetching the byte-range refs among `keys` that are neither cached
   * nor in flight, grouped by URL, when the range reader can read many ranges
   * at once (nearby chunks then share HTTP requests): each URL's ranges in
   * offset order, in up to PREFETCH_PARALLEL batches of at least
   * PREFETCH_MIN_BYTES (and at most MANY_BATCH ranges). Returns the batches
   * started, at once (none without a cache or a batch reader: `get` fetches
   * as usual). Errors surface in `get`.
   */
  startPrefetch(keys: Iterable<string>, signal?: AbortSignal): Promise<void>[] {
    const many = this.rangeReader.many;
    const cache = this.cache;
    if (!many || !cache) return [];
    const byUrl = new Map<string, ByteRange[]>();
    for (const key of keys) {
      const loc = this.locate(key);
      if (loc?.kind !== "range" || loc.length === 0 || cache.has(loc.url, loc.offset, loc.length)) continue;
      let list = byUrl.get(loc.url);
      if (!list) byUrl.set(loc.url, (list = []));
      list.push({ offset: loc.offset, length: loc.length });
    }
    const jobs: Promise<void>[] = [];
    for (const [url, ranges] of byUrl) {
      if (ranges.length < 2) continue;
      ranges.sort((a, b) => a.offset - b.offset);
      const total = ranges.reduce((a, r) => a + r.length, 0);
      const target = Math.max(PREFETCH_MIN_BYTES, Math.ceil(total / PREFETCH_PARALLEL));
      let first = 0;
      let bytes = 0;
      for (let i = 0; i < ranges.length; i++) {
        bytes += ranges[i]!.length;
        if (bytes < target && i + 1 - first < MANY_BATCH && i + 1 < ranges.length) continue;
        const batch = ranges.slice(first, i + 1);
        jobs.push(cache.prefetchMany(url, batch, (missing, onRange) => many(url, missing, signal, onRange)));
        first = i + 1;
        bytes = 0;
      }
    }
    return jobs;
  }

  /** startPrefetch, resolving when its batches have landed (or failed). */
  async prefetch(keys: Iterable<string>, signal?: AbortSignal): Promise<void> {
    await Promise.all(this.startPrefetch(keys, signal));
  }

  /** The bytes of one range, through the cache. Do not mutate the result. */
  readRange(url: string, offset: number, length: number, signal?: AbortSignal): Promise<Uint8Array> {
    if (length === 0) return Promise.resolve(new Uint8Array(0));
    if (!this.cache) return this.rangeReader(url, offset, length, signal);
    return this.cache.getOrFetch(url, offset, length, () => this.rangeReader(url, offset, length, signal));
  }

  private maybePad(key: string, bytes: Uint8Array): Uint8Array {
    const slash = key.lastIndexOf("/");
    const last = key.slice(slash + 1);
    if (!CHUNK_KEY.test(last)) return bytes;
    const parent = slash < 0 ? "" : key.slice(0, slash);
    let info = this.padInfo.get(parent);
    if (!info) {
      info = { padTo: padSize(this.json(parent === "" ? ".zarray" : `${parent}/.zarray`)) };
      this.padInfo.set(parent, info);
    }
    if (info.padTo === null || bytes.byteLength >= info.padTo) return bytes;
    const out = new Uint8Array(info.padTo);
    out.set(bytes);
    return out;
  }
}

/**
 * Full chunk size in bytes of an unfiltered, uncompressed numeric array
 * (i, u, f kinds as lindi pads; b too), else null (never pad).
 */
function padSize(zarray: PyJson | undefined): number | null {
  if (!zarray || typeof zarray !== "object" || Array.isArray(zarray)) return null;
  const z = zarray as Record<string, PyJson>;
  const filters = z["filters"];
  if (z["compressor"] !== null && z["compressor"] !== undefined) return null;
  if (filters !== null && filters !== undefined && !(Array.isArray(filters) && filters.length === 0)) return null;
  const dtype = z["dtype"];
  const chunks = z["chunks"];
  if (typeof dtype !== "string" || !Array.isArray(chunks)) return null;
  const m = /^[<>|]([iufb])(\d+)$/.exec(dtype);
  if (!m) return null;
  let n = Number(m[2]);
  for (const c of chunks) {
    if (typeof c !== "number") return null;
    n *= c;
  }
  return n;
}
