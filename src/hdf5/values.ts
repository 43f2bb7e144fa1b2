import type { Metadata } from "h5wasm";
import type { H5Module } from "./h5wasmTypes.ts";
import { PyFloat } from "../lindi/pythonJson.ts";
import { H5T, isBoolEnum } from "./dtype.ts";

/** A dereferenced object reference: the target's path, or null for a null reference. */
export interface H5Ref {
  readonly ref: true;
  readonly path: string | null;
  readonly region: boolean;
}

/**
 * One decoded HDF5 element. Integers are numbers (bigint beyond 2^53), floats
 * are PyFloat (so 1.0 stays a float), fixed-size strings and opaque values
 * are their raw bytes, vlen strings are JS strings (UTF-8 decoded), compound
 * rows and array/vlen-sequence members are arrays.
 */
export type H5Value = number | bigint | boolean | string | PyFloat | Uint8Array | H5Ref | H5Value[];

export type RefResolver = (refBytes: Uint8Array, region: boolean) => H5Ref;

/** The typed arrays that hold numeric HDF5/numpy elements. */
export type NumericArray =
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | Float32Array
  | Float64Array
  | BigInt64Array
  | BigUint64Array;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Malloc `nbytes` in the wasm heap, fill, use, reclaim vlen memory, free. */
function withHeapBuffer<T>(
  m: H5Module,
  nbytes: number,
  fill: (ptr: bigint) => void,
  use: (heap: Uint8Array, ptr: number) => T,
  reclaim: ((ptr: bigint) => void) | null,
): T {
  const ptr = m._malloc(Math.max(nbytes, 1));
  if (!ptr) throw new Error(`out of wasm memory allocating ${nbytes} bytes`);
  let filled = false;
  try {
    fill(BigInt(ptr));
    filled = true;
    return use(m.HEAPU8, ptr);
  } finally {
    if (filled && reclaim) reclaim(BigInt(ptr));
    m._free(ptr);
  }
}

function needsReclaim(md: Metadata): boolean {
  if (md.vlen || md.type === H5T.VLEN) return true;
  if (md.type === H5T.COMPOUND) return (md.compound_type?.members ?? []).some(needsReclaim);
  if (md.type === H5T.ARRAY && md.array_type) return needsReclaim(md.array_type);
  return false;
}

function totalElements(md: Metadata): number {
  return md.shape === null ? 0 : md.total_size;
}

/**
 * The dataset's elements as raw bytes in the file's datatype but
 * little-endian (h5wasm converts big-endian on read). Only for types without
 * pointers (no vlen, no references).
 */
export function readDatasetBytes(m: H5Module, fileId: bigint, path: string, md: Metadata): Uint8Array {
  const nbytes = md.size * totalElements(md);
  return withHeapBuffer(
    m,
    nbytes,
    (ptr) => m.get_dataset_data(fileId, path, null, null, null, ptr),
    (heap, ptr) => heap.slice(ptr, ptr + nbytes),
    null,
  );
}

/** Every element of a dataset, decoded (row-major, flat). */
export function readDatasetElements(m: H5Module, fileId: bigint, path: string, md: Metadata, resolve: RefResolver): H5Value[] {
  const n = totalElements(md);
  return withHeapBuffer(
    m,
    md.size * n,
    (ptr) => m.get_dataset_data(fileId, path, null, null, null, ptr),
    (heap, ptr) => decodeElements(heap, ptr, md, n, resolve),
    needsReclaim(md) ? (ptr) => m.reclaim_vlen_memory(fileId, path, "", ptr) : null,
  );
}

/** Every element of an attribute, decoded (row-major, flat). */
export function readAttributeElements(
  m: H5Module,
  fileId: bigint,
  objPath: string,
  name: string,
  md: Metadata,
  resolve: RefResolver,
): H5Value[] {
  const n = totalElements(md);
  if (n === 0) return [];
  return withHeapBuffer(
    m,
    md.size * n,
    (ptr) => m.get_attribute_data(fileId, objPath, name, ptr),
    (heap, ptr) => decodeElements(heap, ptr, md, n, resolve),
    needsReclaim(md) ? (ptr) => m.reclaim_vlen_memory(fileId, objPath, name, ptr) : null,
  );
}

function decodeElements(heap: Uint8Array, ptr: number, md: Metadata, n: number, resolve: RefResolver): H5Value[] {
  const view = new DataView(heap.buffer, heap.byteOffset, heap.byteLength);
  const out: H5Value[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = decodeOne(heap, view, ptr + i * md.size, md, resolve);
  return out;
}

/** Decodes `n` elements of a fixed-size type (no pointers) from little-endian bytes. */
export function decodeFixedElements(bytes: Uint8Array, md: Metadata, n: number): H5Value[] {
  return decodeElements(bytes, 0, md, n, () => {
    throw new Error("references cannot be decoded from raw bytes");
  });
}

function decodeOne(heap: Uint8Array, view: DataView, at: number, md: Metadata, resolve: RefResolver): H5Value {
  switch (md.type) {
    case H5T.INTEGER:
    case H5T.BITFIELD:
      return decodeInteger(view, at, md.size, md.type === H5T.INTEGER && md.signed);
    case H5T.ENUM: {
      const base = decodeInteger(view, at, md.size, md.signed);
      return isBoolEnum(md) ? base !== 0 : base;
    }
    case H5T.FLOAT:
      return new PyFloat(decodeFloat(view, at, md.size));
    case H5T.STRING: {
      if (md.vlen) {
        const p = view.getUint32(at, true);
        if (p === 0) return "";
        const end = heap.indexOf(0, p);
        return decodeUtf8(heap.subarray(p, end < 0 ? p : end));
      }
      return toNullPadded(heap.slice(at, at + md.size), md.strpad);
    }
    case H5T.REFERENCE:
      return resolve(heap.slice(at, at + md.size), md.ref_type === "region");
    case H5T.COMPOUND: {
      const members = (md.compound_type?.members ?? []) as (Metadata & { offset: number })[];
      return members.map((mm) => decodeOne(heap, view, at + mm.offset, mm, resolve));
    }
    case H5T.ARRAY: {
      const base = md.array_type as Metadata;
      const shape = (base.shape ?? []) as number[];
      const count = shape.reduce((a, b) => a * b, 1);
      const flat: H5Value[] = [];
      for (let i = 0; i < count; i++) flat.push(decodeOne(heap, view, at + i * base.size, base, resolve));
      return nest(flat, shape) as H5Value;
    }
    case H5T.VLEN: {
      const len = view.getUint32(at, true);
      const p = view.getUint32(at + 4, true);
      const base = md.vlen_type as Metadata;
      const items: H5Value[] = [];
      for (let i = 0; i < len; i++) items.push(decodeOne(heap, view, p + i * base.size, base, resolve));
      return items;
    }
    default:
      return heap.slice(at, at + md.size);
  }
}

function decodeInteger(view: DataView, at: number, size: number, signed: boolean): number | bigint {
  switch (size) {
    case 1:
      return signed ? view.getInt8(at) : view.getUint8(at);
    case 2:
      return signed ? view.getInt16(at, true) : view.getUint16(at, true);
    case 4:
      return signed ? view.getInt32(at, true) : view.getUint32(at, true);
    case 8: {
      const v = signed ? view.getBigInt64(at, true) : view.getBigUint64(at, true);
      return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
    }
    default:
      throw new Error(`unsupported integer size ${size}`);
  }
}

/**
 * h5py reads fixed-length strings as NUL-padded: a NUL-terminated value ends
 * at its first NUL, a space-padded one loses its trailing spaces (HDF5's
 * string conversion). Returns the value NUL-padded to its full size.
 */
export function toNullPadded(bytes: Uint8Array, strpad: number | undefined): Uint8Array {
  let end = bytes.length;
  if (strpad === 0) {
    const nul = bytes.indexOf(0);
    if (nul >= 0) end = nul;
  } else if (strpad === 2) {
    while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0)) end--;
  }
  if (end === bytes.length) return bytes;
  const out = new Uint8Array(bytes.length);
  out.set(bytes.subarray(0, end));
  return out;
}

/** Decodes a little-endian IEEE float of 2, 4 or 8 bytes, or an x87 80-bit extended in 12 or 16. */
export function decodeFloat(view: DataView, at: number, size: number): number {
  switch (size) {
    case 2:
      return halfToNumber(view.getUint16(at, true));
    case 4:
      return view.getFloat32(at, true);
    case 8:
      return view.getFloat64(at, true);
    case 12:
    case 16:
      return extended80ToNumber(view, at);
    default:
      throw new Error(`unsupported float size ${size}`);
  }
}

export function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24;
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

function extended80ToNumber(view: DataView, at: number): number {
  const mantissa = view.getBigUint64(at, true);
  const se = view.getUint16(at + 8, true);
  const sign = se & 0x8000 ? -1 : 1;
  const exp = se & 0x7fff;
  if (exp === 0 && mantissa === 0n) return sign * 0;
  if (exp === 0x7fff) return (mantissa & 0x7fffffffffffffffn) === 0n ? sign * Infinity : NaN;
  return sign * Number(mantissa) * 2 ** (exp - 16383 - 63);
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes);
  } catch {
    throw new Error("string is not valid UTF-8");
  }
}

/** Reverses each `size`-byte element in place (byte-order conversion). */
export function swapElements(bytes: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return bytes;
  for (let i = 0; i + size <= bytes.length; i += size) bytes.subarray(i, i + size).reverse();
  return bytes;
}

/** Splits a flat list into nested lists of `shape` (row-major), like numpy's tolist(): `[]` for a zero-size leading dimension. */
export function nest<T>(flat: T[], shape: readonly number[]): T | unknown[] {
  if (shape.length === 0) return flat[0] as T;
  if (shape.length === 1) return flat;
  const [first, ...rest] = shape as [number, ...number[]];
  const stride = rest.reduce((a, b) => a * b, 1);
  const out: unknown[] = [];
  for (let i = 0; i < first; i++) out.push(nest(flat.slice(i * stride, (i + 1) * stride), rest));
  return out;
}
