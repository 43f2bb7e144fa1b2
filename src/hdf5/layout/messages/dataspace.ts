import { Cursor, type SizeContext } from "../reader.ts";

export interface Dataspace {
  /** null = H5S_NULL; [] = scalar. */
  shape: number[] | null;
  /** null entries = unlimited. */
  maxShape: (number | null)[] | null;
}

/** Dataspace message (0x0001), versions 1 and 2. */
export function decodeDataspace(data: Uint8Array, ctx: SizeContext, position: number): Dataspace {
  const c = new Cursor(data, ctx, "dataspace message", position);
  const version = c.u8();
  if (version !== 1 && version !== 2) c.fail(`unsupported version ${version}`);
  const rank = c.u8();
  const flags = c.u8();
  if (rank > 32) c.fail(`rank ${rank} exceeds the HDF5 maximum of 32`);
  let type: number; // 0 scalar, 1 simple, 2 null
  if (version === 1) {
    type = rank > 0 ? 1 : 0;
    c.skip(1 + 4); // reserved
  } else {
    type = c.u8();
    if (type > 2) c.fail(`unknown dataspace type ${type}`);
  }
  if (type === 2) return { shape: null, maxShape: null };
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(c.length());
  let maxShape: (number | null)[] = shape.slice();
  if (flags & 0x01) {
    maxShape = [];
    for (let i = 0; i < rank; i++) maxShape.push(c.lengthOrUndef());
  }
  return { shape, maxShape };
}
