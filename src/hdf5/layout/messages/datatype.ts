import { Cursor, type SizeContext } from "../reader.ts";
import type { DatatypeInfo, FloatLayout } from "../types.ts";

/**
 * Datatype message (0x0003): only what layout needs - class, size and byte
 * order. Enum and array types take the byte order of their base type.
 */
export function decodeDatatype(data: Uint8Array, ctx: SizeContext, position: number): DatatypeInfo {
  const c = new Cursor(data, ctx, "datatype message", position);
  return decode(c, 0);
}

function decode(c: Cursor, depth: number): DatatypeInfo {
  if (depth > 16) c.fail("datatype nesting too deep");
  const classAndVersion = c.u8();
  const cls = classAndVersion & 0x0f;
  const version = classAndVersion >> 4;
  if (version < 1 || version > 5) c.fail(`unsupported datatype version ${version}`);
  // Class 11 is HDF5 2.0's complex number type; only its size is needed here.
  if (cls > 11) c.fail(`unknown datatype class ${cls}`);
  const bits0 = c.u8();
  const bits1 = c.u8();
  c.skip(1);
  const size = c.u32();
  let byteOrder: "LE" | "BE" | null = null;
  if (cls === 1) {
    byteOrder = bits0 & 0x01 ? "BE" : "LE";
    return { class: cls, version, size, byteOrder, float: decodeFloatProperties(c, bits0, bits1) };
  }
  if (cls === 0 || cls === 2 || cls === 4) {
    byteOrder = bits0 & 0x01 ? "BE" : "LE";
  } else if (cls === 8) {
    // enum: base type follows directly
    byteOrder = decode(c, depth + 1).byteOrder;
  } else if (cls === 10) {
    // array: rank, (v2: 3 reserved), dims (4 bytes each), (v2: permutation), base type
    const rank = c.u8();
    if (version < 3) c.skip(3);
    c.skip(4 * rank);
    if (version < 3) c.skip(4 * rank);
    byteOrder = decode(c, depth + 1).byteOrder;
  } else if (cls === 11) {
    // complex: the base floating-point type is expected to follow; the byte
    // order is informational, so don't fail the dataset if it doesn't parse.
    try {
      byteOrder = decode(c, depth + 1).byteOrder;
    } catch {
      byteOrder = null;
    }
  }
  return { class: cls, version, size, byteOrder };
}

/** Floating-point properties: bit offset, precision, field locations and sizes, exponent bias. */
function decodeFloatProperties(c: Cursor, bits0: number, bits1: number): FloatLayout {
  return {
    bitOffset: c.u16(),
    precision: c.u16(),
    exponentPosition: c.u8(),
    exponentSize: c.u8(),
    mantissaPosition: c.u8(),
    mantissaSize: c.u8(),
    exponentBias: c.u32(),
    signPosition: bits1,
    normalization: (bits0 >> 4) & 0x03,
  };
}
