/**
 * GET /meta: the tree, attributes and types of an HDF5 path, from the index
 * alone (no data reads, no chunk refs in the answer).
 *
 *   group    {name, path, kind: "group", attributes, children: [...]}
 *   dataset  {name, path, kind: "dataset", shape, dtype, fields?, chunks, filters, compressor,
 *             fillValue, scalar?, attributes, storage: {layout, ...}}
 *   link     {name, path, kind: "link", target}          (soft links, never followed in a listing)
 *
 * `depth` levels of children are listed (default 1): nodes above that level
 * are complete (attributes, dataset details, their children); nodes at the
 * last level are summaries (name, path, kind; datasets add shape, dtype,
 * chunks, filters; links their target). Attributes are decoded: LINDI's
 * special keys (_SCALAR, _COMPOUND_DTYPE, _EXTERNAL_ARRAY_LINK, _SOFT_LINK)
 * are left out, object references become {"reference": "<target path>"},
 * integers beyond ±(2^53-1) decimal strings; NaN/±Infinity stay the strings
 * LINDI stores.
 */
import { PyFloat, type PyJson } from "../../lindi/pythonJson.ts";
import { readZArray, type ZArray } from "../../slices/codecs.ts";
import { datasetInfo, PathNotFoundError, resolvePath, type DatasetInfo } from "../../slices/index.ts";
import { ServiceError } from "../errors.ts";
import type { OpenedIndex } from "./context.ts";
import { untagged } from "./context.ts";

export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

export interface StorageInfo {
  /**
   * inline: values stored in the index; chunked: byte ranges of HDF5 chunks; contiguous: one byte
   * range; split: a large contiguous dataset cut into byte-range pieces; external: an
   * _EXTERNAL_ARRAY_LINK (read from the HDF5 file's own chunk index); empty: zero-size.
   */
  layout: "inline" | "chunked" | "contiguous" | "split" | "external" | "empty";
  /** Chunks along each dimension (Zarr grid). */
  chunkGrid: number[];
  /** Chunk entries present in the index (never-written chunks read as the fill value). */
  storedChunks: number;
  /** Bytes of the byte-range chunks (encoded sizes). */
  storedBytes: number;
  /** external: the HDF5 file and dataset the link names. */
  link?: { url: string; name: string };
}

export interface MetaNode {
  name: string;
  path: string;
  kind: "group" | "dataset" | "link";
  /** The path asked for, when soft links led elsewhere. */
  requestedPath?: string;
  target?: string;
  attributes?: Record<string, JsonValue>;
  children?: MetaNode[];
  shape?: number[];
  dtype?: string;
  fields?: { name: string; dtype: string }[];
  chunks?: number[] | null;
  filters?: JsonValue[] | null;
  compressor?: JsonValue;
  fillValue?: JsonValue;
  scalar?: boolean;
  storage?: StorageInfo;
}

export interface MetaOptions {
  /** Levels of children listed (≥ 1). */
  depth: number;
  /** Most nodes one answer may hold (more → 413). */
  maxNodes: number;
}

const SPECIAL_ATTRS = new Set(["_SCALAR", "_COMPOUND_DTYPE", "_EXTERNAL_ARRAY_LINK", "_SOFT_LINK"]);
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function isObj(v: PyJson | undefined): v is Record<string, PyJson> {
  return v !== null && v !== undefined && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
}

/** A PyJson value as plain JSON (floats as numbers, big integers as decimal strings beyond 2^53). */
export function plainJson(v: PyJson | undefined): JsonValue {
  if (v === undefined || v === null) return null;
  if (v instanceof PyFloat) return Number.isFinite(v.value) ? v.value : String(v.value);
  if (typeof v === "bigint") return v > MAX_SAFE || v < -MAX_SAFE ? v.toString() : Number(v);
  if (typeof v === "number") return Number.isFinite(v) ? v : String(v);
  if (typeof v === "string" || typeof v === "boolean") return v;
  if (Array.isArray(v)) return v.map(plainJson);
  const out: Record<string, JsonValue> = {};
  for (const [k, x] of Object.entries(v)) out[k] = plainJson(x);
  return out;
}

/** An attribute value with `_REFERENCE` objects shown as their target paths. */
export function attributeJson(v: PyJson | undefined): JsonValue {
  if (Array.isArray(v)) return v.map(attributeJson);
  if (isObj(v)) {
    const ref = v["_REFERENCE"];
    if (isObj(ref) && Object.keys(v).length === 1) return { reference: typeof ref["path"] === "string" ? ref["path"] : null };
    const out: Record<string, JsonValue> = {};
    for (const [k, x] of Object.entries(v)) out[k] = attributeJson(x);
    return out;
  }
  return plainJson(v);
}

function prefixOf(key: string): string {
  return key === "" ? "" : `${key}/`;
}

function pathOf(key: string): string {
  return `/${key}`;
}

function nameOf(key: string): string {
  return key === "" ? "/" : key.slice(key.lastIndexOf("/") + 1);
}

function join(key: string, name: string): string {
  return key === "" ? name : `${key}/${name}`;
}

class Describer {
  private nodes = 0;
  constructor(
    private readonly ix: OpenedIndex,
    private readonly opts: MetaOptions,
  ) {}

  private count(): void {
    if (++this.nodes > this.opts.maxNodes) {
      throw new ServiceError(413, `the tree has more than ${this.opts.maxNodes} nodes at this depth; ask for a smaller depth or a deeper path`);
    }
  }

  private attrs(key: string): Record<string, PyJson> {
    const a = this.ix.store.json(`${prefixOf(key)}.zattrs`);
    return isObj(a) ? a : {};
  }

  private zarray(key: string): ZArray {
    try {
      return readZArray(this.ix.store.json(`${prefixOf(key)}.zarray`));
    } catch (e) {
      throw new ServiceError(502, `${pathOf(key)}: invalid .zarray in the index: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  private decodedAttributes(key: string): Record<string, JsonValue> {
    const out: Record<string, JsonValue> = {};
    for (const [k, v] of Object.entries(this.attrs(key))) if (!SPECIAL_ATTRS.has(k)) out[k] = attributeJson(v);
    return out;
  }

  /** The soft-link target of a group key, if it is one. */
  private linkTarget(key: string): string | undefined {
    const link = this.attrs(key)["_SOFT_LINK"];
    if (!isObj(link)) return undefined;
    return typeof link["path"] === "string" ? link["path"] : "";
  }

  private info(key: string): DatasetInfo {
    try {
      return datasetInfo(this.ix.doc, key, { store: this.ix.store });
    } catch (e) {
      if (e instanceof PathNotFoundError) throw e;
      throw new ServiceError(502, `${pathOf(key)}: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** Node at `key` (an existing object, no links to follow); `level` 0 is the requested object. */
  node(key: string, level: number): MetaNode {
    this.count();
    const obj = this.ix.tree().get(key);
    if (!obj) throw new PathNotFoundError(pathOf(key));
    const base = { name: nameOf(key), path: pathOf(key) };
    if (obj.kind === "group") {
      const target = this.linkTarget(key);
      if (target !== undefined) return { ...base, kind: "link", target };
    }
    const full = level < this.opts.depth;
    if (obj.kind === "group") {
      if (!full) return { ...base, kind: "group" };
      return {
        ...base,
        kind: "group",
        attributes: this.decodedAttributes(key),
        children: obj.children.map((c) => this.node(join(key, c), level + 1)),
      };
    }
    const info = this.info(key);
    const z = this.zarray(key);
    const summary: MetaNode = {
      ...base,
      kind: "dataset",
      shape: info.shape,
      dtype: info.dtype,
      ...(info.fields ? { fields: info.fields.map((f) => ({ name: f.name, dtype: f.dtype })) } : {}),
      chunks: info.scalar ? null : info.chunks,
      filters: z.filters === null ? null : z.filters.map(plainJson),
    };
    if (!full) return summary;
    return {
      ...summary,
      compressor: plainJson(z.compressor),
      fillValue: plainJson(z.fill_value),
      ...(info.scalar ? { scalar: true } : {}),
      attributes: this.decodedAttributes(key),
      storage: this.storage(key, info, z, obj.chunkKeys),
    };
  }

  private storage(key: string, info: DatasetInfo, z: ZArray, chunkKeys: string[]): StorageInfo {
    const grid = z.shape.map((n, i) => (z.chunks[i]! === 0 ? 0 : Math.ceil(n / z.chunks[i]!)));
    if (info.externalLink) {
      return {
        layout: "external",
        chunkGrid: grid,
        storedChunks: 0,
        storedBytes: 0,
        link: { url: untagged(info.externalLink.url), name: info.externalLink.name },
      };
    }
    let inline = 0;
    const ranges: { key: string; url: string; offset: number; length: number }[] = [];
    for (const c of chunkKeys) {
      const k = `${key}/${c}`;
      const v = this.ix.store.refs[k];
      if (typeof v === "string") inline++; // inline bytes: not decoded just to be counted
      else if (Array.isArray(v) && v.length === 3) {
        // [url, offset, length]: the url as written (templates unexpanded) is enough to compare
        const [u, o, l] = v;
        ranges.push({ key: c, url: String(u), offset: Number(o), length: Number(l) });
      }
    }
    const storedBytes = ranges.reduce((a, r) => a + r.length, 0);
    const out = (layout: StorageInfo["layout"]): StorageInfo => ({ layout, chunkGrid: grid, storedChunks: inline + ranges.length, storedBytes });
    if (z.shape.some((n) => n === 0)) return out("empty");
    if (ranges.length === 0) return out(inline > 0 ? "inline" : "chunked");
    const unfiltered = (z.filters === null || z.filters.length === 0) && z.compressor === null;
    if (ranges.length === 1 && grid.every((g) => g === 1) && unfiltered) return out("contiguous");
    if (inline === 0 && unfiltered && this.isSplit(z, ranges, grid)) return out("split");
    return out("chunked");
  }

  /**
   * A split contiguous dataset (spec 5.7): pieces along the first axis only,
   * back to back in one file, the data's exact size (the last piece short
   * unless it divides evenly) — and, when it divides evenly, pieces of the
   * size the split threshold gives.
   */
  private isSplit(z: ZArray, ranges: { key: string; url: string; offset: number; length: number }[], grid: number[]): boolean {
    const m = /^[<>|]([iuf])(\d+)$/.exec(z.dtype);
    if (!m || z.shape.length === 0) return false;
    const itemsize = Number(m[2]);
    if (grid.slice(1).some((g) => g !== 1) || z.chunks.slice(1).some((c, i) => c !== z.shape[i + 1])) return false;
    if (ranges.length !== grid[0]) return false;
    const rowBytes = z.shape.slice(1).reduce((a, b) => a * b, itemsize);
    const pieceBytes = z.chunks[0]! * rowBytes;
    const total = z.shape[0]! * rowBytes;
    const sorted = [...ranges].sort((a, b) => Number(a.key.split(".")[0]) - Number(b.key.split(".")[0]));
    const base = sorted[0]!.offset;
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i]!;
      if (r.key.split(".").some((p, d) => (d === 0 ? Number(p) !== i : p !== "0"))) return false;
      if (r.url !== sorted[0]!.url || r.offset !== base + i * pieceBytes) return false;
      const want = Math.min(pieceBytes, total - i * pieceBytes);
      if (r.length !== want) return false;
    }
    if (total % pieceBytes !== 0) return true; // short last piece: HDF5 never stores a chunk so
    const threshold = this.ix.splitBytes === undefined ? 20_000_000 : this.ix.splitBytes;
    return threshold !== null && total > threshold && z.chunks[0] === Math.max(1, Math.floor(threshold / rowBytes));
  }
}

/** Describes `path` (leading slash optional; soft links followed). */
export function describePath(ix: OpenedIndex, path: string, opts: MetaOptions): MetaNode {
  const key = resolvePath(ix.store, path);
  const d = new Describer(ix, opts);
  const node = d.node(key, 0);
  const asked = `/${path.split("/").filter((c) => c !== "" && c !== ".").join("/")}`;
  if (asked !== node.path) node.requestedPath = asked;
  return node;
}
