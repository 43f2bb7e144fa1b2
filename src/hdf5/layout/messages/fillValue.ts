import { Cursor, type SizeContext } from "../reader.ts";
import type { FillValueInfo } from "../types.ts";

/** New fill value message (0x0005), versions 1-3. */
export function decodeFillValue(data: Uint8Array, ctx: SizeContext, position: number): FillValueInfo {
  const c = new Cursor(data, ctx, "fill value message", position);
  const version = c.u8();
  if (version < 1 || version > 3) c.fail(`unsupported version ${version}`);
  let allocTime: number;
  let fillTime: number;
  let size = -1; // -1 = undefined fill value
  if (version < 3) {
    allocTime = c.u8();
    fillTime = c.u8();
    const defined = c.u8();
    // Version 1 always carries the size field; version 2 only when defined.
    if (defined || (version === 1 && c.remaining >= 4)) {
      const s = c.u32();
      if (defined) size = s;
    }
  } else {
    const flags = c.u8();
    allocTime = flags & 0x03;
    fillTime = (flags >> 2) & 0x03;
    if (flags & 0x10) size = -1;
    else if (flags & 0x20) size = c.u32();
    else size = 0;
  }
  let bytes: Uint8Array | null = null;
  if (size > 0) bytes = c.bytes(size).slice();
  return {
    defined: bytes !== null,
    bytes,
    allocTime,
    fillTime,
    status: size < 0 ? "undefined" : size === 0 ? "default" : "user",
    source: "fill-value",
  };
}

/** Old fill value message (0x0004): size + value. */
export function decodeOldFillValue(data: Uint8Array, ctx: SizeContext, position: number): FillValueInfo {
  const c = new Cursor(data, ctx, "old fill value message", position);
  const size = c.u32();
  const bytes = size > 0 ? c.bytes(size).slice() : null;
  return {
    defined: bytes !== null,
    bytes,
    allocTime: 0,
    fillTime: 2,
    status: bytes ? "user" : "default",
    source: "old-fill-value",
  };
}
