/**
 * Amending a remote NWB/HDF5 file without copying it: start from the LINDI
 * document of the remote file (its refs point at the remote URL), write it into
 * a `.lindi.tar` (or `.lindi.d`) and add new groups, datasets and attributes.
 * New chunk data lives in the container; the remote refs of the base stay as
 * they are, so the result is readable wherever the remote file is.
 *
 *   const a = await createAmendedTar(baseDoc, "out.lindi.tar");
 *   await a.addGroup("processing/new", { description: "…" });
 *   await a.addDataset("processing/new/values", { shape: [100, 3], data: new Float32Array(300) });
 *   await a.setAttrs("", { note: "amended" });
 *   await a.close();
 *
 * New datasets are Zarr v2 arrays written as lindi writes them (spec 10.5, 13):
 * compressor = zarr's default Blosc (`{"blocksize":0,"clevel":5,"cname":"lz4",
 * "id":"blosc","shuffle":1}`), filters null (or json2 for `|O` string arrays),
 * order C, default chunks ~20 MiB along axis 0; each chunk is Blosc-compressed
 * and stored inline in `refs` when < 1000 bytes, else as a `blobs/<key>`
 * member referenced as `["./blobs/<key>", 0, len]`. Scalars (shape `[]`) become
 * shape `[1]` with `_SCALAR: true`.
 */
import { readFile, stat } from "node:fs/promises";
import { BLOSC_DEFAULT_CONFIG, encodeBloscLz4 } from "./codecs/blosc.ts";
import { encodeJson2, json2FilterConfig } from "./codecs/json2.ts";
import { encodeInlineBytes } from "./inlineBytes.ts";
import { parseLindiDoc, serializeLindiDoc, validateLindiDoc, type LindiDoc } from "./lindiFile.ts";
import { PyFloat, type PyJson } from "./pythonJson.ts";
import { LindiDirWriter } from "./tar/lindiDir.ts";
import { LINDI_JSON_NAME, LindiTarWriter, memberNameOfRef } from "./tar/lindiTar.ts";
import { SerialQueue } from "./serialQueue.ts";
import { swapElements, type NumericArray } from "../hdf5/values.ts";

/** Chunks whose encoded size is below this many bytes are stored inline (spec 10.5). */
export const INLINE_CHUNK_LIMIT = 1000;
/** Target chunk size of the default chunking along axis 0 (spec 13). */
export const DEFAULT_CHUNK_BYTES = 20 * 1024 * 1024;

export type NumericTypedArray = NumericArray | Uint8ClampedArray;

/** Values for a dataset, flat in C order (or nested arrays, flattened). */
export type DatasetData = NumericTypedArray | readonly (number | bigint | boolean | string | PyJson)[];

/** An attribute value: JSON-like values, typed arrays (→ lists), NaN/±Infinity (→ LINDI strings). `undefined` deletes. */
export type AttrValue = PyJson | NumericTypedArray | readonly AttrValue[] | { readonly [k: string]: AttrValue } | undefined;

export interface DatasetSpec {
  /** Shape; `[]` for a scalar. */
  shape: readonly number[];
  /**
   * numpy dtype string (`<f8`, `>i4`, `|u1`, `|b1`, `|S5`, `|O`) or a name
   * (`float64`, `int32`, `uint8`, `bool`, `str`…). Default: from the data
   * (typed array class; booleans → `|b1`; strings → `|O`; bigints → `<i8`;
   * numbers → `<i8` if all integers else `<f8`).
   */
  dtype?: string;
  data: DatasetData;
  /** Chunk shape (default: ~20 MiB along axis 0, other axes whole). */
  chunks?: readonly number[];
  attrs?: Record<string, AttrValue>;
  /** Zarr fill value (default 0 / 0.0 / false / "" ; `|O`: 0). */
  fillValue?: number | bigint | boolean | string;
  /** Replace an existing dataset or group at this path (default: error). */
  overwrite?: boolean;
}

export class AmendError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AmendError";
  }
}

// ---------------------------------------------------------------------------------------
// dtypes

type Kind = "i" | "u" | "f" | "b" | "S" | "O";

export interface DtypeInfo {
  /** numpy `dtype.str` as written into `.zarray`. */
  str: string;
  kind: Kind;
  itemsize: number;
  bigEndian: boolean;
}

const NAMES: Record<string, string> = {
  int8: "i1", int16: "i2", int32: "i4", int64: "i8",
  uint8: "u1", uint16: "u2", uint32: "u4", uint64: "u8",
  float32: "f4", float64: "f8", double: "f8", float: "f8",
  bool: "b1", "?": "b1", bool_: "b1",
  str: "O", object: "O", O: "O",
};

/** Parses a numpy dtype string or name into its `.zarray` form. */
export function parseDtype(d: string): DtypeInfo {
  const spec = NAMES[d] ?? d;
  const m = /^([<>|=]?)([iufbSO?])(\d*)$/.exec(spec);
  if (!m) throw new AmendError(`unsupported dtype ${JSON.stringify(d)}`);
  const kind = (m[2] === "?" ? "b" : m[2]) as Kind;
  const itemsize = m[3] ? Number(m[3]) : kind === "b" ? 1 : NaN;
  if (kind === "O") {
    if (m[3]) throw new AmendError(`unsupported dtype ${JSON.stringify(d)}`);
    return { str: "|O", kind, itemsize: 8, bigEndian: false };
  }
  if (kind === "S") {
    if (!(itemsize >= 1)) throw new AmendError(`fixed-length bytes dtype needs a size: ${JSON.stringify(d)}`);
    return { str: `|S${itemsize}`, kind, itemsize, bigEndian: false };
  }
  if (kind === "b") {
    if (itemsize !== 1) throw new AmendError(`unsupported dtype ${JSON.stringify(d)}`);
    return { str: "|b1", kind, itemsize: 1, bigEndian: false };
  }
  const ok = kind === "f" ? [4, 8].includes(itemsize) : [1, 2, 4, 8].includes(itemsize);
  if (!ok) throw new AmendError(`unsupported dtype ${JSON.stringify(d)}${kind === "f" && itemsize === 2 ? " (float16 is not supported)" : ""}`);
  const bigEndian = itemsize > 1 && m[1] === ">";
  const order = itemsize === 1 ? "|" : bigEndian ? ">" : "<";
  return { str: `${order}${kind}${itemsize}`, kind, itemsize, bigEndian };
}

function typedArrayDtype(a: NumericTypedArray): string | undefined {
  if (a instanceof Float64Array) return "<f8";
  if (a instanceof Float32Array) return "<f4";
  if (a instanceof Int8Array) return "|i1";
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return "|u1";
  if (a instanceof Int16Array) return "<i2";
  if (a instanceof Uint16Array) return "<u2";
  if (a instanceof Int32Array) return "<i4";
  if (a instanceof Uint32Array) return "<u4";
  if (a instanceof BigInt64Array) return "<i8";
  if (a instanceof BigUint64Array) return "<u8";
  return undefined;
}

function inferDtype(data: DatasetData): string {
  if (ArrayBuffer.isView(data)) return typedArrayDtype(data as NumericTypedArray)!;
  const arr = data as readonly unknown[];
  if (arr.length === 0) return "<f8";
  if (arr.every((x) => typeof x === "boolean")) return "|b1";
  if (arr.every((x) => typeof x === "bigint")) return "<i8";
  if (arr.every((x) => typeof x === "number")) return arr.every((x) => Number.isSafeInteger(x)) ? "<i8" : "<f8";
  return "|O";
}

type TypedCtor = { new (n: number): NumericTypedArray; BYTES_PER_ELEMENT: number };

function ctorFor(info: DtypeInfo): TypedCtor {
  const key = `${info.kind}${info.itemsize}`;
  const m: Record<string, TypedCtor> = {
    i1: Int8Array, i2: Int16Array, i4: Int32Array, i8: BigInt64Array,
    u1: Uint8Array, u2: Uint16Array, u4: Uint32Array, u8: BigUint64Array,
    f4: Float32Array, f8: Float64Array,
  };
  return m[key]!;
}

function intRange(info: DtypeInfo): [bigint, bigint] {
  const bits = BigInt(info.itemsize * 8);
  return info.kind === "u" ? [0n, (1n << bits) - 1n] : [-(1n << (bits - 1n)), (1n << (bits - 1n)) - 1n];
}

/** Flattens nested arrays (not typed arrays). */
function flatten(data: DatasetData): readonly unknown[] | NumericTypedArray {
  if (ArrayBuffer.isView(data)) return data as NumericTypedArray;
  const arr = data as readonly unknown[];
  if (!arr.some(Array.isArray)) return arr;
  const out: unknown[] = [];
  const rec = (v: unknown): void => {
    if (Array.isArray(v)) for (const x of v) rec(x);
    else out.push(v);
  };
  rec(arr);
  return out;
}

function bytesOf(a: ArrayBufferView): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** Little-endian element bytes for numeric dtypes (values checked), swapped for `>` dtypes. */
function numericBytes(info: DtypeInfo, values: readonly unknown[] | NumericTypedArray, n: number): Uint8Array {
  const Ctor = ctorFor(info);
  let arr: NumericTypedArray;
  if (values instanceof Ctor && !(values instanceof Uint8ClampedArray && Ctor === Uint8Array)) {
    arr = values as NumericTypedArray;
  } else {
    arr = new Ctor(n);
    const isBig = Ctor === BigInt64Array || Ctor === BigUint64Array;
    const [lo, hi] = info.kind === "f" ? [0n, 0n] : intRange(info);
    for (let i = 0; i < n; i++) {
      const v = (values as ArrayLike<unknown>)[i];
      if (info.kind === "f") {
        if (typeof v !== "number" && typeof v !== "bigint") throw new AmendError(`element ${i} is not a number`);
        (arr as Float64Array)[i] = Number(v);
        continue;
      }
      let b: bigint;
      if (typeof v === "bigint") b = v;
      else if (typeof v === "number" && Number.isInteger(v)) b = BigInt(v);
      else if (typeof v === "boolean") b = v ? 1n : 0n;
      else throw new AmendError(`element ${i} (${String(v)}) is not an integer`);
      if (b < lo || b > hi) throw new AmendError(`element ${i} (${b}) is out of range for ${info.str}`);
      if (isBig) (arr as BigInt64Array)[i] = b;
      else (arr as Int32Array)[i] = Number(b);
    }
  }
  let bytes = bytesOf(arr);
  if (info.bigEndian) bytes = swapElements(bytes.slice(), info.itemsize);
  return bytes;
}

function elementBytes(info: DtypeInfo, values: readonly unknown[] | NumericTypedArray, n: number): Uint8Array {
  if (values.length !== n) throw new AmendError(`data has ${values.length} elements, shape needs ${n}`);
  switch (info.kind) {
    case "i":
    case "u":
    case "f":
      return numericBytes(info, values, n);
    case "b": {
      const out = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const v = (values as ArrayLike<unknown>)[i];
        if (typeof v === "boolean") out[i] = v ? 1 : 0;
        else if (v === 0 || v === 1) out[i] = v;
        else throw new AmendError(`element ${i} is not a boolean`);
      }
      return out;
    }
    case "S": {
      const out = new Uint8Array(n * info.itemsize);
      for (let i = 0; i < n; i++) {
        const v = (values as ArrayLike<unknown>)[i];
        const b = typeof v === "string" ? Buffer.from(v, "utf8") : v instanceof Uint8Array ? v : undefined;
        if (!b) throw new AmendError(`element ${i} is not a string`);
        if (b.length > info.itemsize) throw new AmendError(`element ${i} is longer than ${info.itemsize} bytes`);
        out.set(b, i * info.itemsize);
      }
      return out;
    }
    case "O":
      throw new AmendError("object arrays have no element bytes");
  }
}

// ---------------------------------------------------------------------------------------
// attributes

function isTypedArray(v: unknown): v is NumericTypedArray {
  return ArrayBuffer.isView(v) && !(v instanceof DataView);
}

function floatJson(x: number): PyJson {
  if (Number.isNaN(x)) return "NaN";
  if (x === Infinity) return "Infinity";
  if (x === -Infinity) return "-Infinity";
  return new PyFloat(x);
}

/** Converts an attribute value to what LINDI stores (spec 6.3): NaN/±Infinity as strings, typed arrays as lists. */
export function toAttrJson(v: AttrValue, where = "attribute"): PyJson {
  if (v === undefined) throw new AmendError(`${where}: undefined`);
  if (v === null || typeof v === "string" || typeof v === "boolean" || typeof v === "bigint") return v;
  if (typeof v === "number") return Number.isFinite(v) ? v : floatJson(v);
  if (v instanceof PyFloat) return Number.isFinite(v.value) ? v : floatJson(v.value);
  if (isTypedArray(v)) {
    if (v instanceof Float32Array || v instanceof Float64Array) return Array.from(v, floatJson);
    if (v instanceof BigInt64Array || v instanceof BigUint64Array) return Array.from(v);
    return Array.from(v as ArrayLike<number>);
  }
  if (Array.isArray(v)) return v.map((x, i) => toAttrJson(x as AttrValue, `${where}[${i}]`));
  if (typeof v === "object") {
    const out: Record<string, PyJson> = {};
    for (const [k, x] of Object.entries(v as Record<string, AttrValue>)) {
      if (x !== undefined) out[k] = toAttrJson(x, `${where}.${k}`);
    }
    return out;
  }
  throw new AmendError(`${where}: unsupported value`);
}

// ---------------------------------------------------------------------------------------
// containers

/** Where the amended document and its blobs are written. */
export interface AmendStore {
  readonly kind: "tar" | "dir";
  readonly path: string;
  /** Stores a chunk; returns the ref URL (`./blobs/…`). */
  putBlob(key: string, data: Uint8Array): Promise<string>;
  /** Drops a blob no longer referenced (tar: trashed; dir: deleted). */
  deleteBlob(refUrl: string): Promise<void>;
  setLindiJson(text: string): void;
  flush(): Promise<void>;
  close(): Promise<void>;
}

class TarStore implements AmendStore {
  readonly kind = "tar" as const;
  constructor(readonly writer: LindiTarWriter) {}
  get path(): string {
    return this.writer.path;
  }
  async putBlob(key: string, data: Uint8Array): Promise<string> {
    return "./" + (await this.writer.addBlob(key, data));
  }
  async deleteBlob(refUrl: string): Promise<void> {
    const name = memberNameOfRef(refUrl);
    if (this.writer.has(name)) await this.writer.trash(name);
  }
  setLindiJson(text: string): void {
    this.writer.setLindiJson(text);
  }
  flush(): Promise<void> {
    return this.writer.flush();
  }
  close(): Promise<void> {
    return this.writer.close();
  }
}

class DirStore implements AmendStore {
  readonly kind = "dir" as const;
  constructor(readonly writer: LindiDirWriter) {}
  get path(): string {
    return this.writer.dir;
  }
  putBlob(key: string, data: Uint8Array): Promise<string> {
    return this.writer.addBlob(key, data);
  }
  deleteBlob(refUrl: string): Promise<void> {
    return this.writer.deleteBlob(refUrl);
  }
  setLindiJson(text: string): void {
    this.writer.setLindiJson(text);
  }
  flush(): Promise<void> {
    return this.writer.flush();
  }
  close(): Promise<void> {
    return this.writer.close();
  }
}

// ---------------------------------------------------------------------------------------
// the amended file

function clonePy(v: PyJson): PyJson {
  if (Array.isArray(v)) return v.map(clonePy);
  if (v !== null && typeof v === "object" && !(v instanceof PyFloat)) {
    const out: Record<string, PyJson> = {};
    for (const [k, x] of Object.entries(v)) out[k] = clonePy(x);
    return out;
  }
  return v;
}

/** Normalizes an HDF5-style path to a Zarr key prefix ("" = root). */
export function normalizePath(p: string): string {
  const parts = p.split("/").filter((x) => x !== "");
  for (const x of parts) {
    if (x === "." || x === "..") throw new AmendError(`invalid path ${JSON.stringify(p)}`);
    if (x.startsWith(".")) throw new AmendError(`names starting with '.' are reserved by Zarr: ${JSON.stringify(p)}`);
  }
  return parts.join("/");
}

function join(key: string, name: string): string {
  return key === "" ? name : `${key}/${name}`;
}

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

function defaultChunks(shape: readonly number[], itemsize: number): number[] {
  const rowBytes = itemsize * prod(shape.slice(1));
  const rows = Math.max(1, Math.floor(DEFAULT_CHUNK_BYTES / Math.max(1, rowBytes)));
  return shape.map((d, i) => (i === 0 ? Math.max(1, Math.min(d, rows)) : Math.max(1, d)));
}

/** Visits every chunk index of a grid in C order. */
function* gridIndices(grid: readonly number[]): Generator<number[]> {
  if (grid.some((g) => g === 0)) return;
  const idx = grid.map(() => 0);
  for (;;) {
    yield idx.slice();
    let d = grid.length - 1;
    while (d >= 0) {
      idx[d]!++;
      if (idx[d]! < grid[d]!) break;
      idx[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/**
 * Copies the elements of chunk `idx` out of a C-order array: `copy(srcElem, dstElem, count)`
 * is called for every contiguous run along the last axis.
 */
function forEachChunkRun(
  shape: readonly number[],
  chunks: readonly number[],
  idx: readonly number[],
  copy: (srcElem: number, dstElem: number, count: number) => void,
): void {
  const nd = shape.length;
  const start = idx.map((c, d) => c * chunks[d]!);
  const ext = start.map((s, d) => Math.min(chunks[d]!, shape[d]! - s));
  const srcStride = new Array<number>(nd);
  const dstStride = new Array<number>(nd);
  let s = 1;
  let t = 1;
  for (let d = nd - 1; d >= 0; d--) {
    srcStride[d] = s;
    dstStride[d] = t;
    s *= shape[d]!;
    t *= chunks[d]!;
  }
  const run = ext[nd - 1]!;
  const pos = new Array<number>(nd - 1).fill(0);
  for (;;) {
    let src = start[nd - 1]!;
    let dst = 0;
    for (let d = 0; d < nd - 1; d++) {
      src += (start[d]! + pos[d]!) * srcStride[d]!;
      dst += pos[d]! * dstStride[d]!;
    }
    copy(src, dst, run);
    let d = nd - 2;
    while (d >= 0) {
      pos[d]!++;
      if (pos[d]! < ext[d]!) break;
      pos[d] = 0;
      d--;
    }
    if (d < 0) return;
  }
}

/** Nests a flat C-order list into lists of `shape` (numpy `tolist()`). */
function nestList(flat: PyJson[], shape: readonly number[]): PyJson[] {
  if (shape.length <= 1) return flat;
  const inner = prod(shape.slice(1));
  const out: PyJson[] = [];
  for (let i = 0; i < shape[0]!; i++) out.push(nestList(flat.slice(i * inner, (i + 1) * inner), shape.slice(1)));
  return out;
}

export interface AmendOptions {
  /** Fail if the output exists (default false: replace it). */
  exclusive?: boolean;
}

/**
 * A LINDI file being amended. Every method that changes data returns a promise;
 * operations are applied in call order. `close()` writes `lindi.json`.
 */
export class AmendedLindi {
  private readonly queue = new SerialQueue();
  private closed = false;

  private constructor(
    private readonly store: AmendStore,
    /** The live document (do not modify directly). */
    readonly doc: LindiDoc,
  ) {}

  /**
   * Creates `outPath` (`.lindi.d` suffix → directory, anything else → `.lindi.tar`)
   * holding a copy of `baseDoc`. Refs of the base are kept as they are; `./`
   * refs are refused (they would point into some other container — export a
   * remote tar's document with `LindiFile.portableDoc()` first).
   */
  static async create(baseDoc: LindiDoc, outPath: string, opts: AmendOptions & { container?: "tar" | "dir" } = {}): Promise<AmendedLindi> {
    const doc = validateLindiDoc(clonePy(baseDoc as unknown as PyJson), "base document");
    for (const [k, v] of Object.entries(doc.refs)) {
      if (Array.isArray(v) && typeof v[0] === "string" && v[0].startsWith("./")) {
        throw new AmendError(`base document ref ${JSON.stringify(k)} is relative (${v[0]}); it cannot be resolved from a new container`);
      }
    }
    if (!(".zgroup" in doc.refs) && !(".zarray" in doc.refs)) doc.refs[".zgroup"] = { zarr_format: 2 };
    const container = opts.container ?? (/\.d\/?$/.test(outPath) ? "dir" : "tar");
    const text = serializeLindiDoc(doc);
    const store: AmendStore =
      container === "dir"
        ? new DirStore(await LindiDirWriter.create(outPath, text, { exclusive: opts.exclusive }))
        : new TarStore(await LindiTarWriter.create(outPath, text, { exclusive: opts.exclusive }));
    return new AmendedLindi(store, doc);
  }

  /** Opens an existing local `.lindi.tar` or `.lindi.d` for further amending. */
  static async open(path: string): Promise<AmendedLindi> {
    const st = await stat(path);
    if (st.isDirectory()) {
      const w = await LindiDirWriter.open(path);
      const doc = parseLindiDoc(await readFile(`${path}/${LINDI_JSON_NAME}`, "utf8"), `${path}/${LINDI_JSON_NAME}`);
      return new AmendedLindi(new DirStore(w), doc);
    }
    const w = await LindiTarWriter.open(path);
    try {
      const bytes = await w.readMember(LINDI_JSON_NAME);
      const doc = parseLindiDoc(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"), `${path} (lindi.json)`);
      return new AmendedLindi(new TarStore(w), doc);
    } catch (e) {
      await w.close().catch(() => undefined);
      throw e;
    }
  }

  get container(): "tar" | "dir" {
    return this.store.kind;
  }

  get path(): string {
    return this.store.path;
  }

  /** True when `path` is a group (has `.zgroup`). */
  isGroup(path: string): boolean {
    return join(normalizePath(path), ".zgroup") in this.doc.refs;
  }

  /** True when `path` is a dataset (has `.zarray`). */
  isDataset(path: string): boolean {
    const p = normalizePath(path);
    return p !== "" && join(p, ".zarray") in this.doc.refs;
  }

  /** Creates a group (and missing parents); merges `attrs` into an existing group. */
  addGroup(path: string, attrs?: Record<string, AttrValue>): Promise<void> {
    return this.run(async () => {
      const p = normalizePath(path);
      this.ensureParents(p);
      if (p !== "" && join(p, ".zarray") in this.doc.refs) throw new AmendError(`${p} is a dataset`);
      this.ensureGroup(p);
      if (attrs) this.mergeAttrs(p, attrs, false);
    });
  }

  /** Writes a new dataset (see the module comment for the encoding). */
  addDataset(path: string, spec: DatasetSpec): Promise<void> {
    return this.run(() => this.addDatasetNow(path, spec));
  }

  /** Merges `attrs` into the `.zattrs` of a group or dataset (`undefined` values delete; `replace` drops the others). */
  setAttrs(path: string, attrs: Record<string, AttrValue>, opts: { replace?: boolean } = {}): Promise<void> {
    return this.run(async () => {
      const p = normalizePath(path);
      if (!(join(p, ".zgroup") in this.doc.refs) && !(join(p, ".zarray") in this.doc.refs)) {
        throw new AmendError(`no group or dataset at ${JSON.stringify(path)}`);
      }
      this.mergeAttrs(p, attrs, opts.replace ?? false);
    });
  }

  /** Removes a group or dataset and everything under it (blobs no longer referenced are trashed). */
  remove(path: string): Promise<void> {
    return this.run(async () => {
      const p = normalizePath(path);
      if (p === "") throw new AmendError("cannot remove the root group");
      if (!(join(p, ".zgroup") in this.doc.refs) && !(join(p, ".zarray") in this.doc.refs)) {
        throw new AmendError(`no group or dataset at ${JSON.stringify(path)}`);
      }
      await this.removeSubtree(p);
    });
  }

  /** Writes `lindi.json` (and, for a tar, the index) now. */
  flush(): Promise<void> {
    return this.run(async () => {
      this.store.setLindiJson(serializeLindiDoc(this.doc));
      await this.store.flush();
    });
  }

  /** Flushes and closes the container. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.store.close();
    }
  }

  // ---- internals -----------------------------------------------------------

  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new AmendError("amended file is closed"));
    return this.queue.run(fn);
  }

  private ensureGroup(p: string): void {
    const attrs = this.doc.refs[join(p, ".zattrs")];
    if (attrs && typeof attrs === "object" && !Array.isArray(attrs) && "_SOFT_LINK" in (attrs as object)) {
      throw new AmendError(`${p} is a soft link`);
    }
    const k = join(p, ".zgroup");
    if (!(k in this.doc.refs)) this.doc.refs[k] = { zarr_format: 2 };
  }

  /** Makes sure every proper ancestor of `p` is a group (creating missing ones). */
  private ensureParents(p: string): void {
    const parts = p === "" ? [] : p.split("/");
    for (let i = 0; i < parts.length; i++) {
      const anc = parts.slice(0, i).join("/");
      if (anc !== "" && join(anc, ".zarray") in this.doc.refs) throw new AmendError(`${anc} is a dataset, not a group`);
      this.ensureGroup(anc);
    }
  }

  private mergeAttrs(p: string, attrs: Record<string, AttrValue>, replace: boolean): void {
    const k = join(p, ".zattrs");
    const cur = this.doc.refs[k];
    const base: Record<string, PyJson> =
      !replace && cur && typeof cur === "object" && !Array.isArray(cur) && !(cur instanceof PyFloat)
        ? { ...(cur as Record<string, PyJson>) }
        : {};
    for (const [name, v] of Object.entries(attrs)) {
      if (v === undefined) delete base[name];
      else base[name] = toAttrJson(v, `attribute ${name} of /${p}`);
    }
    if (Object.keys(base).length === 0) delete this.doc.refs[k];
    else this.doc.refs[k] = base;
  }

  private async removeSubtree(p: string): Promise<void> {
    await this.deleteUnreferenced(this.dropSubtree(p));
  }

  /** Deletes every key under `p/`; returns the container-relative ref URLs they used. */
  private dropSubtree(p: string): Set<string> {
    const prefix = p + "/";
    const dropped = new Set<string>();
    for (const k of Object.keys(this.doc.refs)) {
      if (!k.startsWith(prefix)) continue;
      const v = this.doc.refs[k];
      if (Array.isArray(v) && typeof v[0] === "string" && v[0].startsWith("./")) dropped.add(v[0]);
      delete this.doc.refs[k];
    }
    return dropped;
  }

  /** Deletes (tar: trashes) the blobs of `urls` that no ref uses any more. */
  private async deleteUnreferenced(urls: Set<string>): Promise<void> {
    if (urls.size === 0) return;
    for (const v of Object.values(this.doc.refs)) if (Array.isArray(v) && typeof v[0] === "string") urls.delete(v[0]);
    for (const url of urls) await this.store.deleteBlob(url);
  }

  private async addDatasetNow(path: string, spec: DatasetSpec): Promise<void> {
    const p = normalizePath(path);
    if (p === "") throw new AmendError("a dataset needs a non-root path");
    const exists = join(p, ".zarray") in this.doc.refs || join(p, ".zgroup") in this.doc.refs;
    if (exists && !spec.overwrite) throw new AmendError(`${p} already exists (pass overwrite: true to replace it)`);

    // --- validate everything before changing anything
    const userShape = [...spec.shape];
    if (!userShape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new AmendError(`invalid shape [${userShape.join(", ")}]`);
    const scalar = userShape.length === 0;
    const shape = scalar ? [1] : userShape;
    const n = prod(shape);
    const info = parseDtype(spec.dtype ?? inferDtype(spec.data));
    const values = flatten(spec.data);
    if (values.length !== n) throw new AmendError(`data has ${values.length} elements, shape [${userShape.join(", ")}] needs ${n}`);
    const chunks = spec.chunks ? [...spec.chunks] : scalar ? [1] : defaultChunks(shape, info.itemsize);
    if (chunks.length !== shape.length || !chunks.every((c) => Number.isSafeInteger(c) && c >= 1)) {
      throw new AmendError(`invalid chunks [${chunks.join(", ")}] for shape [${shape.join(", ")}]`);
    }
    const fill = this.fillValue(info, spec.fillValue);
    const attrs: Record<string, AttrValue> = { ...(spec.attrs ?? {}) };
    if (scalar) attrs._SCALAR = true;
    const attrJson: Record<string, PyJson> = {};
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined) attrJson[k] = toAttrJson(v, `attribute ${k} of /${p}`);

    // element bytes (or items) up front, so that bad data changes nothing
    let raw: Uint8Array | undefined;
    let items: PyJson[] | undefined;
    if (info.kind === "O") {
      items = Array.from(values as ArrayLike<unknown>, (v, i) => {
        if (typeof v === "string" || typeof v === "number" || typeof v === "boolean" || v === null || typeof v === "bigint" || v instanceof PyFloat) return v;
        if (typeof v === "object") return v as PyJson;
        throw new AmendError(`element ${i} cannot be stored in an object array`);
      });
    } else {
      raw = elementBytes(info, values, n);
    }
    const fillBytes = info.kind === "O" ? undefined : elementBytes(info, [fill.element], 1);

    // encode all chunks before touching the document
    const grid = shape.map((d, i) => Math.ceil(d / chunks[i]!));
    const chunkElems = prod(chunks);
    const encoded: { key: string; bytes: Uint8Array }[] = [];
    for (const idx of gridIndices(grid)) {
      const key = join(p, idx.join("."));
      let payload: Uint8Array;
      if (items) {
        const flat: PyJson[] = new Array(chunkElems).fill(fill.json);
        forEachChunkRun(shape, chunks, idx, (src, dst, count) => {
          for (let i = 0; i < count; i++) flat[dst + i] = items![src + i]!;
        });
        payload = encodeJson2(nestList(flat, chunks), chunks);
      } else {
        const isz = info.itemsize;
        payload = new Uint8Array(chunkElems * isz);
        if (fillBytes && fillBytes.some((b) => b !== 0)) for (let i = 0; i < chunkElems; i++) payload.set(fillBytes, i * isz);
        forEachChunkRun(shape, chunks, idx, (src, dst, count) => {
          payload.set(raw!.subarray(src * isz, (src + count) * isz), dst * isz);
        });
      }
      encoded.push({ key, bytes: await encodeBloscLz4(payload, info.kind === "O" ? 1 : info.itemsize) });
    }

    // --- apply: new blobs first (versioned names while the old ones exist), then drop the old ones
    const oldBlobs = exists ? this.dropSubtree(p) : new Set<string>();
    this.ensureParents(p);
    const refs = this.doc.refs;
    refs[join(p, ".zarray")] = {
      chunks,
      compressor: { ...BLOSC_DEFAULT_CONFIG },
      dtype: info.str,
      fill_value: fill.json,
      filters: info.kind === "O" ? [json2FilterConfig()] : null,
      order: "C",
      shape,
      zarr_format: 2,
    };
    if (Object.keys(attrJson).length > 0) refs[join(p, ".zattrs")] = attrJson;
    for (const { key, bytes } of encoded) {
      if (bytes.length < INLINE_CHUNK_LIMIT) {
        refs[key] = encodeInlineBytes(bytes);
      } else {
        const url = await this.store.putBlob(key, bytes);
        refs[key] = [url, 0, bytes.length];
      }
    }
    await this.deleteUnreferenced(oldBlobs);
  }

  private fillValue(info: DtypeInfo, v: DatasetSpec["fillValue"]): { json: PyJson; element: unknown } {
    switch (info.kind) {
      case "i":
      case "u": {
        const x = v ?? 0;
        if (typeof x !== "number" && typeof x !== "bigint") throw new AmendError("integer fill value expected");
        if (typeof x === "number" && !Number.isInteger(x)) throw new AmendError("integer fill value expected");
        return { json: typeof x === "bigint" && x >= -(2n ** 53n) && x <= 2n ** 53n ? Number(x) : x, element: x };
      }
      case "f": {
        const x = v ?? 0;
        if (typeof x !== "number") throw new AmendError("float fill value expected");
        return { json: floatJson(x), element: x };
      }
      case "b": {
        const x = v ?? false;
        if (typeof x !== "boolean") throw new AmendError("boolean fill value expected");
        return { json: x, element: x };
      }
      case "S": {
        const x = v ?? "";
        if (typeof x !== "string") throw new AmendError("string fill value expected");
        return { json: Buffer.from(x, "utf8").toString("base64"), element: x };
      }
      case "O": {
        const x = v ?? 0;
        if (typeof x === "bigint") return { json: x, element: x };
        return { json: x as PyJson, element: x };
      }
    }
  }
}

/** Creates a `.lindi.tar` holding `baseDoc`, ready for new data (see `AmendedLindi`). */
export function createAmendedTar(baseDoc: LindiDoc, outPath: string, opts: AmendOptions = {}): Promise<AmendedLindi> {
  return AmendedLindi.create(baseDoc, outPath, { ...opts, container: "tar" });
}

/** Same, choosing the container from the suffix (`.lindi.d` → directory, else tar). */
export function createAmendedLindi(baseDoc: LindiDoc, outPath: string, opts: AmendOptions = {}): Promise<AmendedLindi> {
  return AmendedLindi.create(baseDoc, outPath, opts);
}

/** Opens an existing local `.lindi.tar` / `.lindi.d` for more amending. */
export function openAmended(path: string): Promise<AmendedLindi> {
  return AmendedLindi.open(path);
}
