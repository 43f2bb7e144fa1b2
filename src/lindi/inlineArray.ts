import type { Metadata } from "h5wasm";
import { H5T, numpyDtype, elementCount, isComplexCompound } from "../hdf5/dtype.ts";
import type { H5Ref, H5Value } from "../hdf5/values.ts";
import { nest, swapElements } from "../hdf5/values.ts";
import type { H5Node } from "../hdf5/walk.ts";
import { convertSequence, decodeFixedString, referenceToJson, stripTrailingNuls, type ReferenceContext } from "./attributes.ts";
import { LindiConversionError } from "./errors.ts";
import { json2FilterConfig, encodeJson2 } from "./codecs/json2.ts";
import { PyFloat, type PyJson } from "./pythonJson.ts";

type DatasetNode = Extract<H5Node, { kind: "dataset" }>;

/** The zarr default compressor of inline arrays: Blosc LZ4, level 5, byte shuffle. */
export const INLINE_COMPRESSOR = { blocksize: 0, clevel: 5, cname: "lz4", id: "blosc", shuffle: 1 } as const;

/** An inline array before compression: metadata plus the chunk's uncompressed bytes. */
export interface InlineArray {
  zarray: Record<string, PyJson>;
  /** Special attributes it adds (`_SCALAR`, `_COMPOUND_DTYPE`). */
  extraAttrs: Record<string, PyJson>;
  /** null when the array has no elements (no chunk key is written). */
  chunk: { key: string; bytes: Uint8Array; typesize: number } | null;
}

function zarray(shape: number[], chunks: number[], dtype: string, fillValue: PyJson, filters: PyJson[] | null): Record<string, PyJson> {
  return {
    chunks,
    compressor: { ...INLINE_COMPRESSOR },
    dtype,
    fill_value: fillValue,
    filters,
    order: "C",
    shape,
    zarr_format: 2,
  };
}

function chunkKey(ndim: number): string {
  return ndim === 0 ? "0" : new Array(ndim).fill("0").join(".");
}

/** The `_COMPOUND_DTYPE` label numpy/h5py gives a compound field. */
function compoundFieldLabel(md: Metadata, where: string): string {
  const dt = numpyDtype(md);
  // numpy dtype equality ignores h5py's metadata: every object field compares equal to the reference dtype
  if (dt.kind === "O") return "<REFERENCE>";
  if (md.type === H5T.COMPOUND && !isComplexCompound(md)) {
    throw new LindiConversionError(where, "nested compound types are not supported by LINDI");
  }
  if (md.type === H5T.ARRAY) throw new LindiConversionError(where, "array members of compound types are not supported by LINDI");
  return dt.name;
}

function compoundFieldValue(v: H5Value, md: Metadata, where: string, ctx: ReferenceContext): PyJson {
  switch (md.type) {
    case H5T.INTEGER:
    case H5T.BITFIELD:
      return v as number | bigint;
    case H5T.ENUM:
      return typeof v === "boolean" ? v : (v as number | bigint);
    case H5T.FLOAT:
      return v as PyFloat;
    case H5T.STRING:
      if (md.vlen) return v as string;
      return decodeFixedString(v as Uint8Array, where);
    case H5T.REFERENCE: {
      const ref = v as H5Ref;
      return referenceToJson(ref, ctx, where);
    }
    case H5T.VLEN:
      return convertSequence(v as H5Value[], md.vlen_type as Metadata, where);
    default:
      throw new LindiConversionError(where, `cannot serialize a compound field of datatype class ${md.type}`);
  }
}

function objectItem(v: H5Value, md: Metadata, where: string, ctx: ReferenceContext): PyJson {
  if (md.type === H5T.STRING) return v as string;
  if (md.type === H5T.REFERENCE) return referenceToJson(v as H5Ref, ctx, where);
  throw new LindiConversionError(where, "variable-length sequences are not supported by LINDI");
}

/** Zarr chunk shape for an empty inline array (zarr's guess for a zero-size shape). */
function emptyChunks(shape: number[]): number[] {
  return shape.map((d) => Math.max(d, 1));
}

/**
 * LINDI's inline representation of a dataset (spec §5.4): a single-chunk
 * Zarr array with the default Blosc compressor; object arrays through json2.
 */
export function buildInlineArray(node: DatasetNode, ctx: ReferenceContext): InlineArray {
  const where = node.path;
  const shape = node.shape;
  if (shape === null) throw new LindiConversionError(where, "null dataspace");
  const md = node.md;
  const dtype = node.dtype;
  if (dtype.unsupported) throw new LindiConversionError(where, `${dtype.unsupported} is not supported by LINDI`);
  if (dtype.kind === "c") throw new LindiConversionError(where, "complex numbers are not supported by LINDI");
  const n = elementCount(shape);
  const values = node.inline;
  if (n > 0 && (values === null || values.kind === "error")) {
    throw new LindiConversionError(where, values?.kind === "error" ? values.message : "values were not read");
  }

  if (shape.length === 0) return buildInlineScalar(node);

  const chunks = n === 0 ? emptyChunks(shape) : shape;
  const key = chunkKey(shape.length);

  switch (dtype.kind) {
    case "i":
    case "u":
    case "f":
    case "b": {
      const fill: PyJson = dtype.kind === "f" ? new PyFloat(0) : dtype.kind === "b" ? false : 0;
      const za = zarray(shape, chunks, dtype.str, fill, null);
      if (n === 0) return { zarray: za, extraAttrs: {}, chunk: null };
      const bytes = (values as { kind: "bytes"; bytes: Uint8Array }).bytes;
      if (dtype.str.startsWith(">")) swapElements(bytes, dtype.itemsize);
      if (dtype.kind === "b") for (let i = 0; i < bytes.length; i++) bytes[i] = bytes[i] ? 1 : 0;
      return { zarray: za, extraAttrs: {}, chunk: { key, bytes, typesize: dtype.itemsize } };
    }
    case "S": {
      const za = zarray(shape, chunks, dtype.str, "", null);
      if (n === 0) return { zarray: za, extraAttrs: {}, chunk: null };
      const bytes = (values as { kind: "bytes"; bytes: Uint8Array }).bytes;
      return { zarray: za, extraAttrs: {}, chunk: { key, bytes, typesize: dtype.itemsize } };
    }
    case "O": {
      const za = zarray(shape, chunks, "|O", 0, [json2FilterConfig()]);
      if (n === 0) return { zarray: za, extraAttrs: {}, chunk: null };
      const elements = (values as { kind: "elements"; elements: H5Value[] }).elements;
      const items = elements.map((v, i) => objectItem(v, md, `${where}[${i}]`, ctx));
      const nested = nest(items, shape) as PyJson[];
      return { zarray: za, extraAttrs: {}, chunk: { key, bytes: encodeJson2(nested, shape), typesize: 1 } };
    }
    case "V": {
      if (md.type !== H5T.COMPOUND) {
        throw new LindiConversionError(where, `datasets of ${md.type === H5T.ARRAY ? "array" : md.type === H5T.OPAQUE ? "opaque" : "this"} datatype are not supported by LINDI`);
      }
      const members = (md.compound_type?.members ?? []) as (Metadata & { name: string })[];
      const labels = members.map((mm) => [mm.name, compoundFieldLabel(mm, `${where} field ${mm.name}`)] as PyJson);
      const za = zarray(shape, chunks, "|O", 0, [json2FilterConfig()]);
      const extraAttrs = { _COMPOUND_DTYPE: labels };
      if (n === 0) return { zarray: za, extraAttrs, chunk: null };
      const elements = (values as { kind: "elements"; elements: H5Value[] }).elements;
      const rows = elements.map((row, i) =>
        members.map((mm, j) => compoundFieldValue((row as H5Value[])[j] as H5Value, mm, `${where}[${i}].${mm.name}`, ctx)) as PyJson,
      );
      const nested = nest(rows, shape) as PyJson[];
      return { zarray: za, extraAttrs, chunk: { key, bytes: encodeJson2(nested, shape), typesize: 1 } };
    }
    default:
      throw new LindiConversionError(where, `dtype ${dtype.str} is not supported by LINDI`);
  }
}

/** Scalars become shape-[1] arrays marked `_SCALAR` (spec §6.1). */
function buildInlineScalar(node: DatasetNode): InlineArray {
  const where = node.path;
  const md = node.md;
  const dtype = node.dtype;
  const values = node.inline!;
  const extraAttrs = { _SCALAR: true };
  switch (dtype.kind) {
    case "i":
    case "u":
    case "f":
    case "b": {
      // numpy scalars are native (little-endian) whatever the file's byte order
      const str = dtype.str.startsWith(">") ? "<" + dtype.str.slice(1) : dtype.str;
      const fill: PyJson = dtype.kind === "f" ? new PyFloat(0) : dtype.kind === "b" ? false : 0;
      const bytes = (values as { kind: "bytes"; bytes: Uint8Array }).bytes;
      if (dtype.kind === "b") bytes[0] = bytes[0] ? 1 : 0;
      return { zarray: zarray([1], [1], str, fill, null), extraAttrs, chunk: { key: "0", bytes, typesize: dtype.itemsize } };
    }
    case "S": {
      // h5py gives numpy.bytes_ (trailing NULs dropped); zarr infers |S<len> from it
      const raw = stripTrailingNuls((values as { kind: "bytes"; bytes: Uint8Array }).bytes);
      const size = Math.max(1, raw.length);
      const bytes = new Uint8Array(size);
      bytes.set(raw);
      return { zarray: zarray([1], [1], `|S${size}`, "", null), extraAttrs, chunk: { key: "0", bytes, typesize: size } };
    }
    case "O": {
      if (md.type !== H5T.STRING) {
        throw new LindiConversionError(where, md.type === H5T.REFERENCE
          ? "scalar reference datasets are not supported by LINDI"
          : "scalar variable-length sequences are not supported by LINDI");
      }
      const s = (values as { kind: "elements"; elements: H5Value[] }).elements[0] as string;
      const codePoints = Array.from(s);
      const size = Math.max(1, codePoints.length);
      const bytes = new Uint8Array(size * 4);
      const view = new DataView(bytes.buffer);
      codePoints.forEach((c, i) => view.setUint32(i * 4, c.codePointAt(0)!, true));
      return { zarray: zarray([1], [1], `<U${size}`, "", null), extraAttrs, chunk: { key: "0", bytes, typesize: 4 * size } };
    }
    default:
      throw new LindiConversionError(where, md.type === H5T.COMPOUND
        ? "scalar compound datasets are not supported by LINDI"
        : `scalar datasets of dtype ${dtype.str} are not supported by LINDI`);
  }
}
