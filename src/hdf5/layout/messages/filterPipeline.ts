import { Cursor, type SizeContext } from "../reader.ts";
import type { FilterInfo } from "../types.ts";

const KNOWN_NAMES: Record<number, string> = {
  1: "deflate",
  2: "shuffle",
  3: "fletcher32",
  4: "szip",
  5: "nbit",
  6: "scaleoffset",
};

/** Filter pipeline message (0x000B), versions 1 and 2. */
export function decodeFilterPipeline(data: Uint8Array, ctx: SizeContext, position: number): FilterInfo[] {
  const c = new Cursor(data, ctx, "filter pipeline message", position);
  const version = c.u8();
  if (version !== 1 && version !== 2) c.fail(`unsupported version ${version}`);
  const count = c.u8();
  if (count > 32) c.fail(`${count} filters exceeds the HDF5 maximum of 32`);
  if (version === 1) c.skip(6);
  const filters: FilterInfo[] = [];
  for (let i = 0; i < count; i++) {
    const id = c.u16();
    // Version 2 omits the name length for the predefined filters (id < 256).
    const nameLength = version === 1 || id >= 256 ? c.u16() : 0;
    const flags = c.u16();
    const nValues = c.u16();
    let name: string | null = null;
    if (nameLength > 0) {
      const raw = c.bytes(nameLength);
      const end = raw.indexOf(0);
      name = new TextDecoder().decode(end >= 0 ? raw.subarray(0, end) : raw);
      // Version 1 pads the name to a multiple of 8 bytes.
      if (version === 1) c.skip((8 - (nameLength % 8)) % 8);
    }
    const cdValues: number[] = [];
    for (let j = 0; j < nValues; j++) cdValues.push(c.u32());
    if (version === 1 && nValues % 2 === 1) c.skip(4);
    filters.push({ id, name: name || KNOWN_NAMES[id] || null, flags, cdValues, optional: (flags & 0x01) !== 0 });
  }
  return filters;
}
