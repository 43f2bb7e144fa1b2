import type { Metadata } from "h5wasm";

/** HDF5 datatype classes as h5wasm reports them in `Metadata.type`. */
export const H5T = {
  INTEGER: 0,
  FLOAT: 1,
  TIME: 2,
  STRING: 3,
  BITFIELD: 4,
  OPAQUE: 5,
  COMPOUND: 6,
  REFERENCE: 7,
  ENUM: 8,
  VLEN: 9,
  ARRAY: 10,
} as const;

/**
 * The numpy dtype h5py would give a datatype: `str` is numpy's `dtype.str`
 * (byte order + kind + itemsize, e.g. "<i4", "|S5", "|O", "|b1") and `kind`
 * numpy's kind letter. `name` is numpy's `str(dtype)` used inside
 * `_COMPOUND_DTYPE` ("int32", ">i4", "|S6", "bool"...).
 */
export interface NumpyDtype {
  str: string;
  kind: "i" | "u" | "f" | "b" | "S" | "O" | "V" | "c" | "M";
  itemsize: number;
  name: string;
  /** What the object elements are, for kind "O". */
  objectKind?: "vlen-str" | "vlen-bytes" | "reference" | "region-reference" | "vlen-sequence";
  /** Set when numpy/h5py has no equivalent (h5py would refuse the type). */
  unsupported?: string;
}

const NUMPY_NAMES: Record<string, string> = {
  i1: "int8", i2: "int16", i4: "int32", i8: "int64",
  u1: "uint8", u2: "uint16", u4: "uint32", u8: "uint64",
  f2: "float16", f4: "float32", f8: "float64", f16: "float128",
  b1: "bool",
};

function orderChar(md: Metadata, size: number): string {
  if (size === 1) return "|";
  return md.littleEndian ? "<" : ">";
}

function numeric(kind: "i" | "u" | "f" | "b", md: Metadata, size: number): NumpyDtype {
  const order = kind === "b" ? "|" : orderChar(md, size);
  const code = `${kind}${size}`;
  // numpy's str(dtype) is the plain name for native (little-endian) order only.
  const name = order === ">" ? `>${code}` : NUMPY_NAMES[code] ?? `${order}${code}`;
  return { str: `${order}${code}`, kind, itemsize: size, name };
}

const boolEnumCache = new WeakMap<Metadata, boolean>();

/** h5py's convention: an enum with exactly FALSE=0 and TRUE=1 is a bool. Cached: enums can have thousands of members. */
export function isBoolEnum(md: Metadata): boolean {
  let v = boolEnumCache.get(md);
  if (v === undefined) {
    const members = md.enum_type?.members;
    v = !!members && members.FALSE === 0 && members.TRUE === 1 && Object.keys(members).length === 2;
    boolEnumCache.set(md, v);
  }
  return v;
}


/** numpy dtype for an h5wasm datatype description, following h5py's mapping. */
export function numpyDtype(md: Metadata): NumpyDtype {
  switch (md.type) {
    case H5T.INTEGER:
      return numeric(md.signed ? "i" : "u", md, md.size);
    case H5T.BITFIELD:
      // h5py reads bitfields as unsigned integers of the same size
      return numeric("u", md, md.size);
    case H5T.FLOAT:
      // h5py maps every float wider than 8 bytes to numpy.longdouble (16 bytes here)
      if (md.size > 8 && md.size <= 16) return numeric("f", md, 16);
      if (![2, 4, 8].includes(md.size)) {
        return { ...numeric("f", md, md.size), unsupported: `floating-point type of ${md.size} bytes` };
      }
      return numeric("f", md, md.size);
    case H5T.ENUM: {
      if (isBoolEnum(md)) return numeric("b", md, 1);
      const base = { ...md, type: md.enum_type?.type ?? H5T.INTEGER } as Metadata;
      return numpyDtype(base);
    }
    case H5T.STRING:
      if (md.vlen) {
        return { str: "|O", kind: "O", itemsize: 8, name: "object", objectKind: md.cset === 1 ? "vlen-str" : "vlen-bytes" };
      }
      return { str: `|S${md.size}`, kind: "S", itemsize: md.size, name: `|S${md.size}` };
    case H5T.REFERENCE:
      return {
        str: "|O", kind: "O", itemsize: 8, name: "object",
        objectKind: md.ref_type === "region" ? "region-reference" : "reference",
      };
    case H5T.VLEN:
      return { str: "|O", kind: "O", itemsize: 8, name: "object", objectKind: "vlen-sequence" };
    case H5T.COMPOUND: {
      const dt: NumpyDtype = { str: `|V${md.size}`, kind: "V", itemsize: md.size, name: `|V${md.size}` };
      if (isComplexCompound(md)) dt.kind = "c";
      return dt;
    }
    case H5T.ARRAY:
      return { str: `|V${md.size}`, kind: "V", itemsize: md.size, name: `|V${md.size}` };
    case H5T.OPAQUE:
      return { str: `|V${md.size}`, kind: "V", itemsize: md.size, name: `|V${md.size}` };
    case H5T.TIME:
      return { str: `|V${md.size}`, kind: "V", itemsize: md.size, name: `|V${md.size}`, unsupported: "HDF5 time datatype" };
    default:
      return { str: `|V${md.size}`, kind: "V", itemsize: md.size, name: `|V${md.size}`, unsupported: `HDF5 datatype class ${md.type}` };
  }
}

/**
 * h5py reads a two-member float compound whose fields are named r and i
 * (its default `complex_names`) as a complex number.
 */
export function isComplexCompound(md: Metadata): boolean {
  const members = md.compound_type?.members;
  if (md.type !== H5T.COMPOUND || !members || members.length !== 2) return false;
  const [a, b] = members as unknown as [Metadata & { name: string }, Metadata & { name: string }];
  return a.name === "r" && b.name === "i" && a.type === H5T.FLOAT && b.type === H5T.FLOAT && a.size === b.size && (a.size === 4 || a.size === 8);
}

/** Number of elements of a shape (1 for a scalar). */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
