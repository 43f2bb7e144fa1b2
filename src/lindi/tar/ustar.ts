/**
 * POSIX ustar member headers exactly as lindi writes them (spec 10.1), and a
 * sequential scanner used for validation and for finding the end of an archive.
 *
 * Header fields written: name (or prefix + name, see below), mode `0000644\0`,
 * uid/gid `0000000\0`, size (11 octal digits + NUL), mtime `00000000000\0`,
 * checksum (6 octal digits + NUL + space), typeflag `0`, magic `ustar\0`,
 * version `00`; everything else NUL.
 *
 * Names longer than 100 bytes: lindi cannot write them. We use the ustar
 * `prefix` field (155 bytes) the standard way — the name is split at the first
 * `/` such that the part after it fits in `name` and the part before it in
 * `prefix` (the split Python's tarfile makes, so headers stay identical).
 * Names that cannot be split like that (> 256 bytes, or a last component
 * > 100 bytes) are refused with `TarNameTooLongError`. lindi itself never reads
 * member names from headers (it reads the index), so such archives remain
 * readable by lindi; GNU tar and Python's tarfile join prefix and name.
 */

export const BLOCK = 512;
/** The 1024 NUL bytes that end an archive. */
export const END_MARKER_SIZE = 1024;
/** Largest member size the 11-digit octal size field can hold (8 GiB − 1). */
export const MAX_MEMBER_SIZE = 0o77777777777;

const NAME_LEN = 100;
const PREFIX_OFF = 345;
const PREFIX_LEN = 155;
const CHKSUM_OFF = 148;
const SIZE_OFF = 124;

export class TarFormatError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TarFormatError";
  }
}

export class TarNameTooLongError extends TarFormatError {
  constructor(readonly memberName: string) {
    super(
      `tar member name is too long for a ustar header (${Buffer.byteLength(memberName)} bytes; ` +
        `at most 100 bytes, or up to 256 bytes split at a '/' into a ≤155-byte prefix and a ≤100-byte name): ${memberName}`,
    );
    this.name = "TarNameTooLongError";
  }
}

/** Rounds up to a multiple of 512. */
export function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** Splits a member name into ustar (prefix, name) byte strings; throws when impossible. */
export function splitName(name: string): { prefix: Buffer; name: Buffer } {
  const full = Buffer.from(name, "utf8");
  if (full.length === 0) throw new TarFormatError("empty tar member name");
  if (full.includes(0)) throw new TarFormatError("tar member name contains a NUL byte");
  if (full.length <= NAME_LEN) return { prefix: Buffer.alloc(0), name: full };
  // the first '/' such that the head fits in 155 bytes and the rest in 100 (as Python's tarfile splits)
  for (let i = 1; i <= Math.min(full.length - 2, PREFIX_LEN); i++) {
    if (full[i] !== 0x2f) continue;
    if (full.length - i - 1 <= NAME_LEN) return { prefix: full.subarray(0, i), name: full.subarray(i + 1) };
  }
  throw new TarNameTooLongError(name);
}

/** Sum of the 512 header bytes with the checksum field counted as 8 spaces. */
export function headerChecksum(h: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= CHKSUM_OFF && i < CHKSUM_OFF + 8 ? 0x20 : h[i]!;
  return sum;
}

function writeAscii(h: Uint8Array, off: number, s: string): void {
  for (let i = 0; i < s.length; i++) h[off + i] = s.charCodeAt(i);
}

/** Writes the checksum field (6 octal digits, NUL, space) of a header in place. */
export function setHeaderChecksum(h: Uint8Array): void {
  const sum = headerChecksum(h);
  writeAscii(h, CHKSUM_OFF, sum.toString(8).padStart(6, "0"));
  h[CHKSUM_OFF + 6] = 0;
  h[CHKSUM_OFF + 7] = 0x20;
}

/** Sets the name (and prefix) fields of a header in place, clearing both first; recomputes the checksum. */
export function setHeaderName(h: Uint8Array, name: string): void {
  const parts = splitName(name);
  h.fill(0, 0, NAME_LEN);
  h.fill(0, PREFIX_OFF, PREFIX_OFF + PREFIX_LEN);
  h.set(parts.name, 0);
  h.set(parts.prefix, PREFIX_OFF);
  setHeaderChecksum(h);
}

/** A 512-byte header of a regular file, byte for byte as lindi writes it. */
export function buildHeader(name: string, size: number): Uint8Array {
  if (!Number.isSafeInteger(size) || size < 0) throw new TarFormatError(`invalid tar member size ${size}`);
  if (size > MAX_MEMBER_SIZE) throw new TarFormatError(`tar member ${name} too large (${size} bytes; ustar limit 8 GiB)`);
  const h = new Uint8Array(BLOCK);
  writeAscii(h, 100, "0000644\0");
  writeAscii(h, 108, "0000000\0");
  writeAscii(h, 116, "0000000\0");
  writeAscii(h, SIZE_OFF, size.toString(8).padStart(11, "0") + "\0");
  writeAscii(h, 136, "00000000000\0");
  h[156] = 0x30; // '0' regular file
  writeAscii(h, 257, "ustar\0");
  writeAscii(h, 263, "00");
  setHeaderName(h, name); // also sets the checksum
  return h;
}

export interface ParsedHeader {
  /** prefix + "/" + name when a prefix is present. */
  name: string;
  size: number;
  typeflag: string;
  mode: number;
  magic: string;
}

function cString(h: Uint8Array, off: number, len: number): string {
  let end = off;
  while (end < off + len && h[end] !== 0) end++;
  return Buffer.from(h.subarray(off, end)).toString("utf8");
}

function parseOctal(h: Uint8Array, off: number, len: number, field: string): number {
  if (h[off]! & 0x80) throw new TarFormatError(`base-256 ${field} fields are not supported`);
  const s = cString(h, off, len).replace(/ /g, "");
  if (s === "") return 0;
  if (!/^[0-7]+$/.test(s)) throw new TarFormatError(`bad octal ${field} field ${JSON.stringify(s)}`);
  return parseInt(s, 8);
}

/** True for an all-NUL block. */
export function isZeroBlock(b: Uint8Array): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Parses and checksum-verifies one header; throws `TarFormatError` when it is not a valid ustar header. */
export function parseHeader(h: Uint8Array): ParsedHeader {
  if (h.length < BLOCK) throw new TarFormatError("truncated tar header");
  const stored = parseOctal(h, CHKSUM_OFF, 8, "checksum");
  const sum = headerChecksum(h);
  if (stored !== sum) throw new TarFormatError(`tar header checksum mismatch (stored ${stored}, computed ${sum})`);
  const magic = cString(h, 257, 6);
  if (magic !== "ustar") throw new TarFormatError(`not a ustar header (magic ${JSON.stringify(magic)})`);
  const name = cString(h, 0, NAME_LEN);
  const prefix = cString(h, PREFIX_OFF, PREFIX_LEN);
  return {
    name: prefix ? `${prefix}/${name}` : name,
    size: parseOctal(h, SIZE_OFF, 12, "size"),
    typeflag: String.fromCharCode(h[156]! || 0x30),
    mode: parseOctal(h, 100, 8, "mode"),
    magic,
  };
}

/** True when bytes 257..261 are `ustar` and byte 262 is NUL (spec 9.1). */
export function hasUstarMagic(first512: Uint8Array): boolean {
  if (first512.length < BLOCK) return false;
  const m = [0x75, 0x73, 0x74, 0x61, 0x72]; // "ustar"
  for (let i = 0; i < 5; i++) if (first512[257 + i] !== m[i]) return false;
  return first512[262] === 0;
}

export interface ScannedMember {
  name: string;
  size: number;
  typeflag: string;
  /** header offset */
  o: number;
  /** data offset */
  d: number;
}

export interface ScanResult {
  members: ScannedMember[];
  /** Offset of the end marker (first all-NUL block after the last member). */
  end: number;
}

/**
 * Walks the headers of a tar held by `read` from `start` (a header boundary)
 * until the first all-NUL block or the end of the data; validates checksums
 * and that every member lies inside `size` bytes.
 */
export async function scanTar(
  read: (offset: number, length: number) => Promise<Uint8Array>,
  size: number,
  start = 0,
): Promise<ScanResult> {
  const members: ScannedMember[] = [];
  let pos = start;
  while (pos + BLOCK <= size) {
    const h = await read(pos, BLOCK);
    if (h.length < BLOCK) throw new TarFormatError(`truncated tar header at ${pos}`);
    if (isZeroBlock(h)) return { members, end: pos };
    let p: ParsedHeader;
    try {
      p = parseHeader(h);
    } catch (e) {
      throw new TarFormatError(`at offset ${pos}: ${(e as Error).message}`);
    }
    const d = pos + BLOCK;
    if (d + p.size > size) throw new TarFormatError(`member ${p.name} at ${pos} extends past the end of the archive`);
    members.push({ name: p.name, size: p.size, typeflag: p.typeflag, o: pos, d });
    pos = d + padded(p.size);
  }
  return { members, end: pos };
}
