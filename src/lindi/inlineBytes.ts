/**
 * Inline byte values in `refs` (spec 3.2).
 *
 * Writing (as lindi does): if every byte is < 0x80 and the content does not itself start
 * with "base64:", the string of those characters (JSON-escaped later); otherwise
 * "base64:" + standard padded base64.
 * Reading: "base64:" prefix → base64-decode the rest; else the UTF-8 bytes of the string.
 */

const BASE64_PREFIX = "base64:";
// "base64:" as bytes
const PREFIX_BYTES = [0x62, 0x61, 0x73, 0x65, 0x36, 0x34, 0x3a];

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80) return false;
  return true;
}

function startsWithPrefix(bytes: Uint8Array): boolean {
  if (bytes.length < PREFIX_BYTES.length) return false;
  for (let i = 0; i < PREFIX_BYTES.length; i++) if (bytes[i] !== PREFIX_BYTES[i]) return false;
  return true;
}

function toBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Encode chunk bytes as the string lindi stores in `refs`. */
export function encodeInlineBytes(bytes: Uint8Array): string {
  if (isAscii(bytes) && !startsWithPrefix(bytes)) return toBuffer(bytes).toString("latin1");
  return BASE64_PREFIX + toBuffer(bytes).toString("base64");
}

/** Decode a string value from `refs` into bytes. */
export function decodeInlineBytes(value: string): Uint8Array {
  if (value.startsWith(BASE64_PREFIX)) {
    const b = Buffer.from(value.slice(BASE64_PREFIX.length), "base64");
    return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  }
  const b = Buffer.from(value, "utf8");
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
