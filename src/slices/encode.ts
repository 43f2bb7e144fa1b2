/**
 * Response encodings of a SliceResult.
 *
 *   json  {"dtype": "<f4", "shape": [2, 3], "data": [[…], […]]}: nested lists (a scalar's
 *         data is the bare value); NaN / Infinity / -Infinity as those strings; integers
 *         beyond ±(2^53-1) as decimal strings; float32 and float16 printed with the
 *         shortest digits that read back to the same value; bools as true/false;
 *         objects (references, compound rows) as JSON objects.
 *   bin   the raw C-order bytes of the values in the byte order `dtype` says ("<" or "|"
 *         normally; ">" only for native reads of big-endian data), plus dtype and shape
 *         for response headers.
 *   npy   a NumPy .npy file, format version 1.0: magic, header dict (descr,
 *         fortran_order, shape) padded with spaces to a multiple of 64 bytes, then the
 *         same bytes as `bin`.
 *
 * bin and npy need fixed-size elements: object arrays (vlen strings, references)
 * and compound rows raise NotRepresentableError (the route answers 406).
 */
import { numberToHalf } from "./codecs.ts";
import { halfToNumber, swapElements } from "../hdf5/values.ts";
import type { SliceResult } from "./readSlice.ts";

export type SliceFormat = "json" | "bin" | "npy";

/** The data cannot be written in the asked format (variable-size elements). */
export class NotRepresentableError extends Error {
  override readonly name = "NotRepresentableError";
  constructor(
    readonly format: SliceFormat,
    readonly dtype: string,
  ) {
    super(`${format} needs fixed-size elements; dtype ${dtype} has none (use format=json)`);
  }
}

// ---------------------------------------------------------------------------------------
// json

const f32 = new Float32Array(1);

/** Does `p` significant digits of `v` read back as the same float32? */
function roundTrips32(v: number, p: number): boolean {
  f32[0] = Number(v.toPrecision(p));
  return f32[0] === v;
}

const u32 = new Uint32Array(f32.buffer);

/** 10^i for i in 0..22 (exact doubles). */
const POW10 = Array.from({ length: 23 }, (_, i) => 10 ** i);

/** How close (relative to the interval) a decision may come to its edge before the exact search decides. */
const EDGE_MARGIN = 1e-6;

/**
 * The fewest significant digits p whose nearest p-digit decimal lies in the
 * rounding interval of the float32 `a` (> 0, normal, not a power of two;
 * `halfUlp` half its spacing), decided in double arithmetic: a × 10^k is off
 * by at most an ulp, 10^-8 of the interval's width, so a decision farther than
 * EDGE_MARGIN from an edge is exact. 0 when some decision is that close (ties
 * included: the caller then searches with strings).
 */
function shortestDigits32(a: number, halfUlp: number): number {
  let e = Math.floor(Math.log10(a));
  if (e < -37 || e > 38) return 0;
  // exact decade: 10^e <= a < 10^(e+1) (comparisons with 10^e are never close for float32 a)
  if (a < pow10(e)) e--;
  else if (a >= pow10(e + 1)) e++;
  for (let p = 1; p <= 9; p++) {
    const k = p - 1 - e;
    // on the grid of p-digit decimals at spacing 1: a, and the interval's half-width
    const q = timesPow10(a, k);
    const bound = timesPow10(halfUlp, k);
    // toPrecision rounds ties up, Math.round too; either way the decimal it picks is this far from q
    const dist = Math.abs(q - Math.round(q));
    if (Math.abs(dist - bound) <= EDGE_MARGIN * bound) return 0;
    if (dist < bound) return p;
  }
  return 9;
}

function pow10(e: number): number {
  return e >= 0 && e <= 22 ? POW10[e]! : 10 ** e;
}

/** x · 10^k, dividing by an exact power for negative k. */
function timesPow10(x: number, k: number): number {
  return k >= 0 ? x * pow10(k) : x / pow10(-k);
}

/**
 * Shortest decimal text of `v` that `Math.fround` maps back to the same float32.
 * The rounding interval around v is symmetric unless v is a power of two, and
 * p digits of v, padded with a zero, are a (p+1)-digit decimal, so the nearest
 * (p+1)-digit decimal is at least as close: if p digits round-trip, so do p+1.
 * Normal floats other than powers of two: the shortest p is worked out in
 * double arithmetic (shortestDigits32), then checked with one string round
 * trip; where that is not decisive, a binary search over 1..9 with strings
 * (9 always suffice). Powers of two take a linear scan.
 */
export function float32Text(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 2 ** 24) return String(v);
  f32[0] = v;
  const bits = u32[0]!;
  const biased = (bits >>> 23) & 0xff;
  if ((bits & 0x7fffff) !== 0 && biased !== 0) {
    const p = shortestDigits32(Math.abs(v), 2 ** (biased - 151));
    if (p > 0) {
      const s = v.toPrecision(p);
      if (Math.fround(Number(s)) === v) return s.includes("e") ? String(Number(s)) : s;
    }
  }
  if ((bits & 0x7fffff) === 0) {
    for (let p = 1; p < 9; p++) if (roundTrips32(v, p)) return String(Number(v.toPrecision(p)));
    return String(Number(v.toPrecision(9)));
  }
  let lo = 1;
  let hi = 9;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (roundTrips32(v, mid)) hi = mid;
    else lo = mid + 1;
  }
  return String(Number(v.toPrecision(lo)));
}

/** Shortest decimal text of a float16 value that rounds back to the same half. */
export function float16Text(v: number): string {
  if (Object.is(v, -0)) return "-0.0";
  if (Number.isInteger(v) && Math.abs(v) <= 2048) return String(v);
  const bits = numberToHalf(v);
  for (let p = 1; p <= 5; p++) {
    const s = v.toPrecision(p);
    if (numberToHalf(Number(s)) === bits) return String(Number(s));
  }
  return String(v);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function specialFloat(v: number): string | null {
  if (Number.isNaN(v)) return '"NaN"';
  if (v === Infinity) return '"Infinity"';
  if (v === -Infinity) return '"-Infinity"';
  return null;
}

function bigText(v: bigint): string {
  return v > MAX_SAFE || v < -MAX_SAFE ? `"${v.toString()}"` : v.toString();
}

/** JSON text of a JS value from an object array (strings, numbers, references, rows). */
function valueText(v: unknown): string {
  switch (typeof v) {
    case "number":
      return specialFloat(v) ?? (Object.is(v, -0) ? "-0.0" : String(v));
    case "bigint":
      return bigText(v);
    case "string":
      return JSON.stringify(v);
    case "boolean":
      return v ? "true" : "false";
    case "undefined":
      return "null";
    case "object": {
      if (v === null) return "null";
      if (Array.isArray(v)) return `[${v.map(valueText).join(",")}]`;
      if (ArrayBuffer.isView(v)) return `[${Array.from(v as unknown as ArrayLike<unknown>, valueText).join(",")}]`;
      const parts: string[] = [];
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) parts.push(`${JSON.stringify(k)}:${valueText(x)}`);
      return `{${parts.join(",")}}`;
    }
    default:
      return "null";
  }
}

/** Per-element text function for the result's data. */
function elementText(r: SliceResult): (i: number) => string {
  const d = r.data;
  const kind = r.dtype.replace(/^[<>|=]/, "").replace(/\d+$/, "");
  const size = Number(/\d+$/.exec(r.dtype)?.[0] ?? 0);
  if (Array.isArray(d)) return (i) => valueText(d[i]);
  if (kind === "b") {
    const b = d as Uint8Array;
    return (i) => (b[i] ? "true" : "false");
  }
  if (kind === "f" && size === 2) {
    const b = d as Uint16Array;
    return (i) => {
      const v = halfToNumber(b[i]!);
      return specialFloat(v) ?? float16Text(v);
    };
  }
  if (d instanceof Float32Array) {
    return (i) => {
      const v = d[i]!;
      return specialFloat(v) ?? (Object.is(v, -0) ? "-0.0" : float32Text(v));
    };
  }
  if (d instanceof Float64Array) {
    return (i) => {
      const v = d[i]!;
      return specialFloat(v) ?? (Object.is(v, -0) ? "-0.0" : String(v));
    };
  }
  if (d instanceof BigInt64Array || d instanceof BigUint64Array) return (i) => bigText(d[i]!);
  const n = d as Exclude<typeof d, BigInt64Array | BigUint64Array | unknown[]>;
  return (i) => String(n[i]!);
}

/** Most elements one runText call joins. */
const RUN = 1024;

/** Texts of elements `start`..`start + count - 1`, comma-separated (a plain loop: generators are slow per element). */
function runText(text: (i: number) => string, start: number, count: number): string {
  const out = new Array<string>(count);
  for (let j = 0; j < count; j++) out[j] = text(start + j);
  return out.join(",");
}

/**
 * The nested lists of `shape` from the flat element texts, in pieces of
 * about `piece` elements (a long innermost row is cut into runs: where a
 * piece ends does not matter, the pieces are one text).
 */
function* nestedText(shape: readonly number[], text: (i: number) => string, piece: number): Generator<string> {
  if (shape.length === 0) {
    yield text(0);
    return;
  }
  let next = 0;
  let parts: string[] = [];
  let inPiece = 0;
  const last = shape.length - 1;
  function* rec(dim: number): Generator<string> {
    const n = shape[dim]!;
    parts.push("[");
    if (dim === last) {
      for (let k = 0; k < n; ) {
        // runs of at most RUN elements: longer arrays of texts cost more than they save
        const m = Math.min(n - k, piece - inPiece, RUN);
        parts.push(k > 0 ? "," : "", runText(text, next, m));
        next += m;
        k += m;
        inPiece += m;
        if (inPiece >= piece) {
          yield parts.join("");
          parts = [];
          inPiece = 0;
        }
      }
    } else {
      for (let k = 0; k < n; k++) {
        if (k > 0) parts.push(",");
        yield* rec(dim + 1);
      }
    }
    parts.push("]");
  }
  yield* rec(0);
  if (parts.length > 0) yield parts.join("");
}

/**
 * The json encoding in pieces of about `piece` elements each: a large
 * answer can be streamed without holding the event loop for its whole
 * encoding (float32 text costs about 0.3 µs per element).
 */
export function* encodeJsonPieces(r: SliceResult, piece = 16_384): Generator<string> {
  let head = `{"dtype":${JSON.stringify(r.dtype)},"shape":${JSON.stringify(r.shape)},`;
  if (r.fields) head += `"fields":${JSON.stringify(r.fields)},`;
  yield head + `"data":`;
  yield* nestedText(r.shape, elementText(r), piece);
  yield "}";
}

/** The json encoding as a string. */
export function encodeJson(r: SliceResult): string {
  return [...encodeJsonPieces(r)].join("");
}

// ---------------------------------------------------------------------------------------
// bin

export interface BinaryEncoding {
  /** C-order element bytes. */
  body: Uint8Array;
  /** numpy dtype of the bytes (what a client passes to numpy.frombuffer). */
  dtype: string;
  shape: number[];
}

function encodeFixedStrings(r: SliceResult, kind: "S" | "U", n: number): Uint8Array {
  if (r.bytes) return r.bytes;
  const width = kind === "S" ? n : 4 * n;
  const strings = r.data as string[];
  const out = new Uint8Array(strings.length * width);
  strings.forEach((s, i) => {
    if (kind === "S") {
      const b = Buffer.from(s, /[^\x00-\xff]/.test(s) ? "utf8" : "latin1");
      out.set(b.subarray(0, width), i * width);
    } else {
      const view = new DataView(out.buffer, i * width, width);
      let k = 0;
      for (const ch of s) {
        if (k >= n) break;
        view.setUint32(4 * k++, ch.codePointAt(0)!, true);
      }
    }
  });
  return out;
}

/** The bin encoding; NotRepresentableError for object and compound data. */
export function encodeBin(r: SliceResult): BinaryEncoding {
  const m = /^([<>|=]?)([a-zA-Z])(\d+)$/.exec(r.dtype);
  if (r.fields || !m || Array.isArray(r.data) && m[2] !== "S" && m[2] !== "U") throw new NotRepresentableError("bin", r.dtype);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  if (kind === "S" || kind === "U") return { body: encodeFixedStrings(r, kind, size), dtype: r.dtype, shape: r.shape };
  const d = r.data as ArrayBufferView;
  let body = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  if (order === ">" && size > 1) body = swapElements(body.slice(), size);
  return { body, dtype: r.dtype, shape: r.shape };
}

// ---------------------------------------------------------------------------------------
// npy

const NPY_MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** numpy's repr of a shape tuple: `()`, `(3,)`, `(2, 3)`. */
function shapeTuple(shape: readonly number[]): string {
  if (shape.length === 0) return "()";
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/** The npy header bytes (magic, version 1.0, length, dict padded to a multiple of 64 with a final "\n"). */
export function npyHeader(descr: string, shape: readonly number[]): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeTuple(shape)}, }`;
  const pre = NPY_MAGIC.length + 2 + 2;
  const total = Math.ceil((pre + dict.length + 1) / 64) * 64;
  const headerLen = total - pre;
  if (headerLen > 0xffff) throw new Error("npy header too long for format version 1.0");
  const out = new Uint8Array(total);
  out.set(NPY_MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = headerLen & 0xff;
  out[9] = headerLen >> 8;
  const text = dict.padEnd(headerLen - 1, " ") + "\n";
  for (let i = 0; i < text.length; i++) out[pre + i] = text.charCodeAt(i);
  return out;
}

/** The npy encoding; NotRepresentableError for object and compound data. */
export function encodeNpy(r: SliceResult): Uint8Array {
  let bin: BinaryEncoding;
  try {
    bin = encodeBin(r);
  } catch (e) {
    if (e instanceof NotRepresentableError) throw new NotRepresentableError("npy", r.dtype);
    throw e;
  }
  const header = npyHeader(bin.dtype, bin.shape);
  const out = new Uint8Array(header.length + bin.body.length);
  out.set(header, 0);
  out.set(bin.body, header.length);
  return out;
}

// ---------------------------------------------------------------------------------------

export interface EncodedSlice {
  body: Uint8Array;
  contentType: string;
  /** Extra response headers (bin: the dtype and shape). */
  headers: Record<string, string>;
}

/** Encodes a result for an HTTP response. */
export function encodeSlice(r: SliceResult, format: SliceFormat): EncodedSlice {
  switch (format) {
    case "json":
      return { body: Buffer.from(encodeJson(r), "utf8"), contentType: "application/json", headers: {} };
    case "bin": {
      const b = encodeBin(r);
      return {
        body: b.body,
        contentType: "application/octet-stream",
        headers: { "x-dtype": b.dtype, "x-shape": b.shape.join(",") },
      };
    }
    case "npy":
      return { body: encodeNpy(r), contentType: "application/x-npy", headers: {} };
  }
}
