/**
 * What zarrita needs to read LINDI arrays, and the dtype mapping between
 * LINDI's `.zarray` and zarrita's array metadata.
 *
 * zarrita 0.7.5 has zlib, gzip, zstd, lz4, blosc (numcodecs WASM), shuffle and
 * a json2 codec. Registered here (overriding where noted):
 *
 *   numcodecs.json2       override: zarrita's uses JSON.parse, which rejects the bare
 *                         NaN/Infinity lindi writes (spec §4.4), and keeps only the
 *                         top-level list (N-D object chunks come out nested); ours uses
 *                         the project's decodeJson2 and flattens to C order
 *   numcodecs.zlib        override: zarrita's pipes every chunk through a web
 *                         DecompressionStream, 5-7x slower than node:zlib on many small
 *                         chunks (measured: 20 000 chunks of 40 bytes, 5.1 s vs 0.9 s);
 *                         ours inflates inputs below 64 KiB synchronously, larger ones
 *                         on the libuv thread pool; when the service runs inflate
 *                         workers (inflateWorkers.ts), bursts of chunks are shared with them
 *   numcodecs.fletcher32  new: verifies the 4-byte trailer (HDF5's Fletcher-32, also the
 *                         byte-swapped variant of HDF5 < 1.6.3) and strips it
 *   numcodecs.shuffle     override: zarrita's takes the element size from the array's
 *                         data type (and asserts on string/object types); ours uses the
 *                         configured `elementsize`, as numcodecs does
 *   numcodecs.blosc       override: the project's decoder (no WASM instantiation)
 *   numcodecs.lzf         new: liblzf decompression (the HDF5 lzf filter's payload)
 *   lindi.chunk_size      internal: checks a decoded fixed-size chunk has exactly the
 *                         chunk's byte size before it becomes a typed array (zarrita
 *                         would silently read short chunks as garbage)
 *
 * Not expressible in zarrita (handled in readSlice): float16 (Node 20 has no
 * Float16Array: mapped to uint16 and converted), `_COMPOUND_DTYPE` rows,
 * zero-length arrays, `_SCALAR`, `_EXTERNAL_ARRAY_LINK`, complex / void /
 * long double dtypes (refused).
 */
import { promisify } from "node:util";
import { inflate } from "node:zlib";
import { registry } from "zarrita";
import type { ArrayMetadata, CodecMetadata, DataType } from "zarrita";
import { lzfDecompress, unshuffle } from "../hdf5/filterDecoders.ts";
import { decodeBlosc } from "../lindi/codecs/blosc.ts";
import { decodeJson2 } from "../lindi/codecs/json2.ts";
import { inflateHere, inflateWorkers } from "./inflateWorkers.ts";
import { PyFloat, type PyJson } from "../lindi/pythonJson.ts";

/** A dtype the slice reader cannot decode (complex, void, long double, …). */
export class UnsupportedDtypeError extends Error {
  override readonly name = "UnsupportedDtypeError";
  constructor(
    readonly dtype: string,
    reason = "is not supported",
  ) {
    super(`dtype ${dtype} ${reason}`);
  }
}

/** A chunk whose checksum does not match its data. */
export class ChecksumError extends Error {
  override readonly name = "ChecksumError";
}

/** A decoded chunk of the wrong size. */
export class ChunkSizeError extends Error {
  override readonly name = "ChunkSizeError";
}

// ---------------------------------------------------------------------------------------
// dtypes

/** A parsed numpy dtype string of a LINDI array. */
export interface ParsedDtype {
  /** As written (e.g. ">i4", "|S5", "<U11", "|O"). */
  str: string;
  order: "<" | ">" | "|";
  kind: "i" | "u" | "f" | "b" | "S" | "U" | "O";
  /** Bytes per element (0 for objects). */
  itemsize: number;
}

export function parseDtype(dtype: string): ParsedDtype {
  if (dtype === "|O" || dtype === "O" || dtype === "<O" || dtype === ">O") return { str: dtype, order: "|", kind: "O", itemsize: 0 };
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(dtype);
  if (!m) throw new UnsupportedDtypeError(dtype, "is not a numpy dtype string");
  const order = (m[1] === "" || m[1] === "=" ? "<" : m[1]) as "<" | ">" | "|";
  const kind = m[2]!;
  const n = Number(m[3]);
  switch (kind) {
    case "i":
    case "u":
      if (![1, 2, 4, 8].includes(n)) break;
      return { str: dtype, order, kind, itemsize: n };
    case "f":
      if (![2, 4, 8].includes(n)) break;
      return { str: dtype, order, kind, itemsize: n };
    case "b":
      if (n !== 1) break;
      return { str: dtype, order, kind, itemsize: 1 };
    case "S":
      return { str: dtype, order, kind, itemsize: n };
    case "U":
      return { str: dtype, order, kind, itemsize: 4 * n };
  }
  throw new UnsupportedDtypeError(dtype);
}

const ZARR_TYPES: Record<string, DataType> = {
  i1: "int8",
  i2: "int16",
  i4: "int32",
  i8: "int64",
  u1: "uint8",
  u2: "uint16",
  u4: "uint32",
  u8: "uint64",
  f2: "uint16", // raw half bits (no Float16Array in Node 20)
  f4: "float32",
  f8: "float64",
  b1: "bool",
};

/** zarrita's data type for a LINDI dtype. */
export function zarrDataType(d: ParsedDtype): DataType {
  switch (d.kind) {
    case "O":
      return "v2:object";
    case "S":
      return `v2:S${d.itemsize}`;
    case "U":
      return `v2:U${d.itemsize / 4}`;
    default:
      return ZARR_TYPES[`${d.kind}${d.itemsize}`]!;
  }
}

// float16 ↔ bits
const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE half bits of a number (round to nearest even). */
export function numberToHalf(v: number): number {
  if (Number.isNaN(v)) return 0x7e00;
  f32[0] = v;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00;
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && (h & 1))) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1))) h++;
  return sign | h;
}

/** The Zarr v2 fill value of `.zarray` as zarrita wants it for `dataType`. */
function zarrFill(fill: PyJson | undefined, d: ParsedDtype): unknown {
  if (fill === null || fill === undefined) return null;
  const num = (v: PyJson): number | null => {
    if (typeof v === "number") return v;
    if (typeof v === "bigint") return Number(v);
    if (v instanceof PyFloat) return v.value;
    if (v === "NaN") return NaN;
    if (v === "Infinity") return Infinity;
    if (v === "-Infinity") return -Infinity;
    if (typeof v === "boolean") return v ? 1 : 0;
    return null;
  };
  switch (d.kind) {
    case "f": {
      const v = num(fill);
      if (v === null) return null;
      return d.itemsize === 2 ? numberToHalf(v) : v;
    }
    case "i":
    case "u":
      if (d.itemsize === 8) return typeof fill === "bigint" ? fill : BigInt(Math.trunc(num(fill) ?? 0));
      return num(fill);
    case "b":
      return typeof fill === "boolean" ? fill : Boolean(num(fill));
    case "S":
      // zarr stores |S fill values as base64; zarrita's fill writes UTF-8 of the string
      return typeof fill === "string" ? Buffer.from(fill, "base64").toString("latin1").replace(/\0+$/, "") : "";
    case "U":
      return typeof fill === "string" ? fill : "";
    case "O":
      return toJsValue(fill);
  }
}

/** The `.zarray` fields the reader uses. */
export interface ZArray {
  shape: number[];
  chunks: number[];
  dtype: string;
  fill_value: PyJson;
  filters: PyJson[] | null;
  compressor: PyJson | null;
  order: "C" | "F";
  dimension_separator?: "." | "/";
}

function intList(v: PyJson | undefined, what: string): number[] {
  if (!Array.isArray(v)) throw new Error(`.zarray ${what} is not a list`);
  return v.map((x) => {
    const n = typeof x === "bigint" ? Number(x) : x;
    if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 0) throw new Error(`.zarray ${what} holds ${String(x)}`);
    return n;
  });
}

/** Validates a parsed `.zarray`. */
export function readZArray(v: PyJson | undefined): ZArray {
  if (!v || typeof v !== "object" || Array.isArray(v) || v instanceof PyFloat) throw new Error(".zarray is not an object");
  const z = v as Record<string, PyJson>;
  const shape = intList(z["shape"], "shape");
  const chunks = intList(z["chunks"], "chunks");
  if (chunks.length !== shape.length) throw new Error(".zarray chunks and shape differ in rank");
  const dtype = z["dtype"];
  if (typeof dtype !== "string") throw new Error(".zarray dtype is not a string");
  const filters = z["filters"] ?? null;
  if (filters !== null && !Array.isArray(filters)) throw new Error(".zarray filters is not a list");
  const order = z["order"] === "F" ? "F" : "C";
  const sep = z["dimension_separator"];
  return {
    shape,
    chunks,
    dtype,
    fill_value: z["fill_value"] ?? null,
    filters: filters as PyJson[] | null,
    compressor: z["compressor"] ?? null,
    order,
    ...(sep === "/" || sep === "." ? { dimension_separator: sep } : {}),
  };
}

function codecOf(config: PyJson): CodecMetadata {
  if (!config || typeof config !== "object" || Array.isArray(config) || config instanceof PyFloat) {
    throw new Error(`codec config ${JSON.stringify(String(config))} is not an object`);
  }
  const { id, ...rest } = config as Record<string, PyJson>;
  if (typeof id !== "string") throw new Error("codec config without an id");
  return { name: `numcodecs.${id}`, configuration: toJsValue(rest) as Record<string, unknown> };
}

/**
 * zarrita (v3-style) array metadata for a LINDI `.zarray`: dtype mapped as
 * above, filters then compressor as numcodecs codecs, explicit big-endian
 * bytes codec, and a chunk size check for fixed-size dtypes.
 */
export function zarritaMetadata(z: ZArray, attributes: Record<string, unknown> = {}): ArrayMetadata<DataType> {
  const d = parseDtype(z.dtype);
  const dataType = zarrDataType(d);
  const codecs: CodecMetadata[] = [];
  if (d.kind !== "O") {
    const chunkBytes = z.chunks.reduce((a, b) => a * b, 1) * d.itemsize;
    codecs.push({ name: "lindi.chunk_size", configuration: { bytes: chunkBytes } });
  }
  if (z.order === "F") codecs.push({ name: "transpose", configuration: { order: "F" } });
  for (const f of z.filters ?? []) codecs.push(codecOf(f));
  if (d.order === ">" && d.itemsize > 1 && d.kind !== "S") codecs.push({ name: "bytes", configuration: { endian: "big" } });
  if (z.compressor !== null) codecs.push(codecOf(z.compressor));
  return {
    zarr_format: 3,
    node_type: "array",
    shape: z.shape,
    data_type: dataType,
    chunk_grid: { name: "regular", configuration: { chunk_shape: z.chunks } },
    chunk_key_encoding: { name: "v2", configuration: { separator: z.dimension_separator ?? "." } },
    codecs,
    fill_value: zarrFill(z.fill_value, d) as never,
    attributes,
  };
}

// ---------------------------------------------------------------------------------------
// PyJson → plain JS values

/**
 * Plain JS value of a decoded JSON value: PyFloat → number, bigint kept only
 * beyond 2^53 (parsePythonJson gives bigint only then), objects and lists
 * converted deeply.
 */
export function toJsValue(v: PyJson): unknown {
  if (v === null || typeof v !== "object") return v;
  if (v instanceof PyFloat) return v.value;
  if (Array.isArray(v)) return v.map(toJsValue);
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = toJsValue(x);
  return out;
}

// ---------------------------------------------------------------------------------------
// Codecs

function unsupportedEncode(name: string): () => never {
  return () => {
    throw new Error(`${name}: encoding is not supported by the slice reader`);
  };
}

/**
 * Decodes json2 chunk payloads into flat C-order lists of JS values.
 * Items of an N-D chunk are nested N-1 levels deep; compound rows (lists)
 * inside stay lists. One item for a longer first axis is broadcast, as numpy
 * does when decoding.
 */
export class Json2Codec {
  readonly kind = "array_to_bytes";
  constructor(private readonly shape: number[]) {}
  static fromConfig(_config: unknown, meta: { shape: number[] }): Json2Codec {
    return new Json2Codec(meta.shape);
  }
  encode = unsupportedEncode("json2");
  decode(bytes: Uint8Array): { data: unknown[]; shape: number[]; stride: number[] } {
    const { items, shape: payloadShape } = decodeJson2(bytes);
    const shape = this.shape;
    const total = shape.reduce((a, b) => a * b, 1);
    const first = shape[0] ?? 1;
    let top: PyJson[] = items;
    if (top.length === 1 && first > 1) top = new Array<PyJson>(first).fill(items[0]!);
    const flat: unknown[] = [];
    const depth = Math.max(0, shape.length - 1);
    const walk = (v: PyJson, level: number): void => {
      if (level === 0) {
        flat.push(toJsValue(v));
        return;
      }
      if (!Array.isArray(v)) throw new ChunkSizeError(`json2 chunk: expected a nested list ${depth} levels deep`);
      const n = shape[shape.length - level]!;
      if (v.length === 1 && n > 1) for (let i = 0; i < n; i++) walk(v[0]!, level - 1);
      else for (const x of v) walk(x, level - 1);
    };
    for (const item of top) walk(item, depth);
    if (flat.length !== total) {
      throw new ChunkSizeError(`json2 chunk holds ${flat.length} items for chunk shape [${shape.join(", ")}] (payload shape [${payloadShape.join(", ")}])`);
    }
    const stride = new Array<number>(shape.length);
    let s = 1;
    for (let i = shape.length - 1; i >= 0; i--) {
      stride[i] = s;
      s *= shape[i]!;
    }
    return { data: flat, shape, stride };
  }
}

/** HDF5's Fletcher-32 (H5_checksum_fletcher32): big-endian 16-bit words, odd tail byte as the high byte. */
export function fletcher32(data: Uint8Array): number {
  let sum1 = 0;
  let sum2 = 0;
  let len = data.length >>> 1;
  let i = 0;
  while (len > 0) {
    let tlen = len > 360 ? 360 : len;
    len -= tlen;
    do {
      sum1 += (data[i]! << 8) | data[i + 1]!;
      i += 2;
      sum2 += sum1;
    } while (--tlen > 0);
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  if (data.length & 1) {
    sum1 += data[i]! << 8;
    sum2 += sum1;
    sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
    sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  }
  sum1 = (sum1 & 0xffff) + (sum1 >>> 16);
  sum2 = (sum2 & 0xffff) + (sum2 >>> 16);
  return ((sum2 << 16) | sum1) >>> 0;
}

/** Verifies and strips the 4-byte little-endian Fletcher-32 trailer (numcodecs ≥ 0.12 / HDF5 filter 3). */
export function stripFletcher32(bytes: Uint8Array): Uint8Array {
  if (bytes.length < 4) throw new ChecksumError(`fletcher32: chunk of ${bytes.length} bytes has no checksum`);
  const data = bytes.subarray(0, bytes.length - 4);
  const t = bytes.length - 4;
  const stored = (bytes[t]! | (bytes[t + 1]! << 8) | (bytes[t + 2]! << 16) | (bytes[t + 3]! << 24)) >>> 0;
  const sum = fletcher32(data);
  // HDF5 < 1.6.3 wrote the two bytes of each 16-bit half swapped; HDF5 accepts both
  const reversed = (((sum & 0x00ff00ff) << 8) | ((sum & 0xff00ff00) >>> 8)) >>> 0;
  if (stored !== sum && stored !== reversed) {
    throw new ChecksumError(`fletcher32 checksum mismatch: stored ${stored.toString(16)}, computed ${sum.toString(16)}`);
  }
  return data;
}

export class Fletcher32Codec {
  readonly kind = "bytes_to_bytes";
  static fromConfig(): Fletcher32Codec {
    return new Fletcher32Codec();
  }
  encode = unsupportedEncode("fletcher32");
  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    return stripFletcher32(bytes);
  }
}

export class ShuffleCodec {
  readonly kind = "bytes_to_bytes";
  constructor(private readonly elementsize: number) {}
  static fromConfig(config: { elementsize?: number }): ShuffleCodec {
    return new ShuffleCodec(config?.elementsize ?? 4);
  }
  encode = unsupportedEncode("shuffle");
  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    return unshuffle(bytes, this.elementsize);
  }
}

export class BloscCodec {
  readonly kind = "bytes_to_bytes";
  static fromConfig(): BloscCodec {
    return new BloscCodec();
  }
  encode = unsupportedEncode("blosc");
  decode(bytes: Uint8Array): Promise<Uint8Array> {
    return decodeBlosc(bytes);
  }
}

/** Bytes of one element of a zarrita data type (8 for objects: an upper bound is enough here). */
function elementBytes(dataType: DataType): number {
  const m = /^v2:([SU])(\d+)$/.exec(dataType);
  if (m) return (m[1] === "U" ? 4 : 1) * Number(m[2]);
  const bits = /(\d+)$/.exec(dataType);
  return bits ? Number(bits[1]) / 8 : dataType === "bool" ? 1 : 8;
}

export class LzfCodec {
  readonly kind = "bytes_to_bytes";
  constructor(private readonly maxBytes: number) {}
  static fromConfig(_config: unknown, meta: { shape: number[]; dataType: DataType }): LzfCodec {
    // the decoded chunk is at most one chunk of elements (more if filters widen it: allow 8 bytes each)
    const n = meta.shape.reduce((a, b) => a * b, 1);
    return new LzfCodec(n * Math.max(8, elementBytes(meta.dataType)));
  }
  encode = unsupportedEncode("lzf");
  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    return lzfDecompress(bytes, this.maxBytes);
  }
}

const inflateAsync = promisify(inflate);
const SYNC_INFLATE_LIMIT = 64 * 1024;

/** Room past the expected size, so that the output buffer never fills (a filter may add a few bytes). */
const INFLATE_SLACK = 64;

export class ZlibCodec {
  readonly kind = "bytes_to_bytes";
  /**
   * `chunkSize`: node:zlib's output buffer size. By default it inflates into
   * 16 KiB pieces, and a 16 KiB chunk then costs a second, unused piece (one
   * more call to see the end), a large chunk a piece per 16 KiB and a final
   * copy: sized to the chunk, every chunk is inflated into one buffer.
   */
  constructor(private readonly options: { chunkSize: number } | undefined = undefined) {}
  static fromConfig(_config: unknown, meta?: { shape: number[]; dataType: DataType }): ZlibCodec {
    const itemsize = meta && /^(u?int\d+|float\d+|bool|v2:[SU]\d+)$/.test(meta.dataType) ? elementBytes(meta.dataType) : 0;
    const bytes = itemsize * (meta?.shape.reduce((a, b) => a * b, 1) ?? 0);
    return new ZlibCodec(bytes > 0 && bytes <= 256 * 1024 * 1024 ? { chunkSize: bytes + INFLATE_SLACK } : undefined);
  }
  encode = unsupportedEncode("zlib");
  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    if (bytes.length >= SYNC_INFLATE_LIMIT) {
      const out = await inflateAsync(bytes, this.options ?? {});
      return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
    }
    // a burst of chunks is shared with the inflate workers when the service runs them
    const workers = inflateWorkers();
    return workers ? workers.inflate(bytes, this.options?.chunkSize) : inflateHere(bytes, this.options?.chunkSize);
  }
}

export class ChunkSizeCodec {
  readonly kind = "bytes_to_bytes";
  constructor(private readonly bytes: number) {}
  static fromConfig(config: { bytes: number }): ChunkSizeCodec {
    return new ChunkSizeCodec(config.bytes);
  }
  encode = unsupportedEncode("chunk_size");
  async decode(bytes: Uint8Array): Promise<Uint8Array> {
    if (bytes.byteLength !== this.bytes) {
      throw new ChunkSizeError(`decoded chunk has ${bytes.byteLength} bytes, expected ${this.bytes}`);
    }
    return bytes;
  }
}

type RegistryEntry = Parameters<typeof registry.set>[1];

let registered = false;

/** Registers the codecs above with zarrita's (process-wide) registry. Idempotent. */
export function registerLindiCodecs(): void {
  if (registered) return;
  registered = true;
  const set = (name: string, codec: unknown) => registry.set(name, (async () => codec) as unknown as RegistryEntry);
  set("numcodecs.json2", Json2Codec);
  set("json2", Json2Codec);
  set("numcodecs.zlib", ZlibCodec);
  set("numcodecs.fletcher32", Fletcher32Codec);
  set("numcodecs.shuffle", ShuffleCodec);
  set("numcodecs.blosc", BloscCodec);
  set("numcodecs.lzf", LzfCodec);
  set("lindi.chunk_size", ChunkSizeCodec);
}
