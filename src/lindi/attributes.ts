import { H5T, isBoolEnum } from "../hdf5/dtype.ts";
import type { H5Value, H5Ref } from "../hdf5/values.ts";
import { nest } from "../hdf5/values.ts";
import type { H5Attr } from "../hdf5/walk.ts";
import type { Metadata } from "h5wasm";
import { LindiConversionError } from "./errors.ts";
import { PyFloat, type PyJson } from "./pythonJson.ts";

/** Everything needed to turn a dereferenced object reference into LINDI's `_REFERENCE`. */
export interface ReferenceContext {
  rootObjectId: H5Value | null;
  objectIds: Map<string, H5Value | null>;
}

const SPECIAL_FLOAT_STRINGS = new Set(["NaN", "Infinity", "-Infinity"]);
const utf8 = new TextDecoder("utf-8", { fatal: true });

/** NaN / ±Infinity as the strings LINDI uses; other floats unchanged. */
export function encodeFloat(value: number): PyJson {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "Infinity";
  if (value === -Infinity) return "-Infinity";
  return new PyFloat(value);
}

/** numpy `bytes_` semantics: trailing NULs are not part of the value. */
export function stripTrailingNuls(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  return bytes.subarray(0, end);
}

export function decodeFixedString(bytes: Uint8Array, where: string): string {
  try {
    return utf8.decode(stripTrailingNuls(bytes));
  } catch {
    throw new LindiConversionError(where, "fixed-length string is not valid UTF-8");
  }
}

function jsonObjectId(value: H5Value | null | undefined): PyJson {
  if (value === null || value === undefined) return null;
  if (value instanceof Uint8Array) return decodeFixedString(value, "object_id");
  return value as PyJson;
}

/** `{"_REFERENCE": {...}}` for a dereferenced object reference (spec §6.4). */
export function referenceToJson(ref: H5Ref, ctx: ReferenceContext, where: string): PyJson {
  if (ref.path === null) throw new LindiConversionError(where, "null object reference");
  return {
    _REFERENCE: {
      object_id: jsonObjectId(ctx.objectIds.get(ref.path)),
      path: ref.path,
      source: ".",
      source_object_id: jsonObjectId(ctx.rootObjectId),
    },
  };
}

function isRef(v: H5Value): v is H5Ref {
  return typeof v === "object" && v !== null && (v as H5Ref).ref === true;
}

/** The base (non-array) type of an attribute and the extra dimensions an ARRAY type adds. */
function flattenArrayType(md: Metadata): { base: Metadata; extraDims: number[] } {
  if (md.type === H5T.ARRAY && md.array_type) {
    const inner = flattenArrayType(md.array_type);
    return { base: inner.base, extraDims: [...((md.array_type.shape ?? []) as number[]), ...inner.extraDims] };
  }
  return { base: md, extraDims: [] };
}

function flatElements(values: H5Value[], extraDims: number[]): H5Value[] {
  if (extraDims.length === 0) return values;
  const out: H5Value[] = [];
  const walk = (v: H5Value) => {
    if (Array.isArray(v)) v.forEach(walk);
    else out.push(v);
  };
  values.forEach(walk);
  return out;
}

type ArrayKind = "int" | "float" | "bool" | "str-vlen" | "str-fixed";

function arrayKind(md: Metadata, where: string): ArrayKind {
  switch (md.type) {
    case H5T.INTEGER:
    case H5T.BITFIELD:
      return "int";
    case H5T.ENUM:
      return isBoolEnum(md) ? "bool" : "int";
    case H5T.FLOAT:
      return "float";
    case H5T.STRING:
      return md.vlen ? "str-vlen" : "str-fixed";
    case H5T.COMPOUND:
      throw new LindiConversionError(where, "compound attributes are not supported by LINDI");
    case H5T.REFERENCE:
      throw new LindiConversionError(where, "arrays of references are not supported in LINDI attributes");
    case H5T.VLEN:
      throw new LindiConversionError(where, "arrays of variable-length sequences are not supported in LINDI attributes");
    default:
      throw new LindiConversionError(where, `attribute datatype class ${md.type} is not supported by LINDI`);
  }
}

/** A variable-length sequence's items as h5py's ndarray → list conversion gives them. */
export function convertSequence(items: H5Value[], base: Metadata, where: string): PyJson[] {
  const kind = arrayKind(base, where);
  return items.map((v) => convertArrayElement(v, kind, where));
}

function convertArrayElement(v: H5Value, kind: ArrayKind, where: string): PyJson {
  switch (kind) {
    case "int":
      return typeof v === "boolean" ? (v ? 1 : 0) : (v as number | bigint);
    case "bool":
      return Boolean(v);
    case "float":
      return encodeFloat((v as PyFloat).value);
    case "str-vlen":
      return v as string;
    case "str-fixed":
      return decodeFixedString(v as Uint8Array, where);
  }
}

/**
 * An HDF5 attribute as LINDI writes it into `.zattrs` (spec §6.3, lindi's
 * `h5_to_zarr_attr` applied to what h5py reads). Throws LindiConversionError
 * where the reference implementation fails.
 */
export function convertAttribute(attr: H5Attr, objectPath: string, ctx: ReferenceContext): PyJson {
  const where = `${objectPath} attribute ${JSON.stringify(attr.name)}`;
  if (attr.error) throw new LindiConversionError(where, `unreadable: ${attr.error}`);
  if (attr.shape === null) throw new LindiConversionError(where, "empty attribute (null dataspace) is not supported by LINDI");
  const md = attr.md;
  const elements = attr.elements ?? [];
  if (attr.dtype.kind === "c") throw new LindiConversionError(where, "complex numbers are not supported by LINDI");

  if (attr.shape.length === 0) {
    // h5py reads a scalar ARRAY or VLEN-sequence attribute as an ndarray
    if (md.type === H5T.ARRAY || md.type === H5T.VLEN) {
      const first = elements[0];
      const inner = md.type === H5T.ARRAY ? flattenArrayType(md) : { base: md.vlen_type as Metadata, extraDims: [(first as H5Value[]).length] };
      const kind = arrayKind(inner.base, where);
      const flat = flatElements(md.type === H5T.ARRAY ? [first as H5Value] : (first as H5Value[]), md.type === H5T.ARRAY ? inner.extraDims : []);
      return nest(flat.map((v) => convertArrayElement(v, kind, where)), inner.extraDims) as PyJson;
    }
    return convertScalar(elements[0] as H5Value, md, where, ctx);
  }

  const { base, extraDims } = flattenArrayType(md);
  const kind = arrayKind(base, where);
  const flat = flatElements(elements, extraDims);
  const converted = flat.map((v) => convertArrayElement(v, kind, where));
  return nest(converted, [...attr.shape, ...extraDims]) as PyJson;
}

function convertScalar(v: H5Value, md: Metadata, where: string, ctx: ReferenceContext): PyJson {
  switch (md.type) {
    case H5T.INTEGER:
    case H5T.BITFIELD:
      return v as number | bigint;
    case H5T.ENUM:
      return isBoolEnum(md) ? Boolean(v) : (v as number | bigint);
    case H5T.FLOAT:
      // h5py gives numpy.longdouble for 16-byte floats, which lindi rejects
      if (md.size === 16) throw new LindiConversionError(where, "long double attributes are not supported by LINDI");
      return encodeFloat((v as PyFloat).value);
    case H5T.STRING: {
      if (md.vlen) {
        const s = v as string;
        if (SPECIAL_FLOAT_STRINGS.has(s)) {
          throw new LindiConversionError(where, `the string ${JSON.stringify(s)} is reserved for floats in LINDI attributes`);
        }
        return s;
      }
      return decodeFixedString(v as Uint8Array, where);
    }
    case H5T.REFERENCE:
      if (!isRef(v)) throw new LindiConversionError(where, "unreadable reference");
      return referenceToJson(v, ctx, where);
    case H5T.COMPOUND:
      throw new LindiConversionError(where, "compound attributes are not supported by LINDI");
    case H5T.OPAQUE:
      throw new LindiConversionError(where, "opaque attributes are not supported by LINDI");
    default:
      throw new LindiConversionError(where, `attribute datatype class ${md.type} is not supported by LINDI`);
  }
}

/** All attributes of an object as a `.zattrs` object. */
export function convertAttributes(attrs: H5Attr[], objectPath: string, ctx: ReferenceContext): Record<string, PyJson> {
  const out: Record<string, PyJson> = {};
  for (const a of attrs) out[a.name] = convertAttribute(a, objectPath, ctx);
  return out;
}
