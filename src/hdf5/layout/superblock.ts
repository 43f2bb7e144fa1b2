import type { ByteSource } from "../byteSource.ts";
import { Hdf5FormatError, Hdf5UnsupportedError } from "./errors.ts";
import { checkFieldSizes, Cursor } from "./reader.ts";
import type { Superblock } from "./types.ts";

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];
/** Enough for any superblock version with 8-byte fields (v1 with root entry is ~ 136 bytes). */
const SUPERBLOCK_READ = 256;

function hasSignature(buf: Uint8Array): boolean {
  if (buf.length < 8) return false;
  for (let i = 0; i < 8; i++) if (buf[i] !== SIGNATURE[i]) return false;
  return true;
}

/**
 * Candidate superblock positions: 0, 512, 1024, 2048, ... below the file size
 * (a user block shifts the superblock to a power of two >= 512).
 */
function* candidates(size: number): Generator<number> {
  yield 0;
  for (let p = 512; p < size; p *= 2) yield p;
}

/** Finds the signature and decodes superblock versions 0-3. */
export async function readSuperblock(source: ByteSource): Promise<Superblock> {
  if (source.size < 8) throw new Hdf5FormatError(`not an HDF5 file: only ${source.size} bytes`);
  for (const pos of candidates(source.size)) {
    const buf = await source.read(pos, Math.min(SUPERBLOCK_READ, source.size - pos));
    if (hasSignature(buf)) return parseSuperblock(buf, pos, source.size);
  }
  throw new Hdf5FormatError("not an HDF5 file: no superblock signature at offset 0 or any power of two >= 512");
}

function parseSuperblock(buf: Uint8Array, pos: number, fileSize: number): Superblock {
  // The field sizes are only known after the fixed part; start with a dummy context.
  const c0 = new Cursor(buf, { offsetSize: 8, lengthSize: 8, baseAddress: 0 }, "superblock", pos);
  c0.skip(8);
  const version = c0.u8();
  if (version > 3) throw new Hdf5UnsupportedError(`superblock version ${version} is not supported`);
  let offsetSize: number;
  let lengthSize: number;
  if (version <= 1) {
    c0.skip(4); // free-space, root symtab, reserved, shared header versions
    offsetSize = c0.u8();
    lengthSize = c0.u8();
    c0.skip(1);
  } else {
    offsetSize = c0.u8();
    lengthSize = c0.u8();
  }
  checkFieldSizes(offsetSize, lengthSize);
  // Addresses below are relative to the base address; decode them raw (base 0).
  const c = new Cursor(buf, { offsetSize, lengthSize, baseAddress: 0 }, "superblock", pos);
  c.seek(c0.pos);
  let storedBase: number | null;
  let extension: number | null = null;
  let eof: number | null;
  let root: number | null;
  if (version <= 1) {
    c.skip(2 + 2 + 4); // group leaf K, group internal K, consistency flags
    if (version === 1) c.skip(4); // indexed storage K, reserved
    storedBase = c.offset();
    c.offset(); // free-space info
    eof = c.offset();
    c.offset(); // driver info block
    // root group symbol table entry: link name offset, object header address, ...
    c.offset();
    root = c.offset();
  } else {
    c.skip(1); // consistency flags
    storedBase = c.offset();
    extension = c.offset();
    eof = c.offset();
    root = c.offset();
  }
  if (root === null) throw new Hdf5FormatError("superblock: root group object header address is undefined");
  // HDF5 itself takes the superblock position as the base address when they
  // differ (e.g. after a user block was added with h5jam), so do the same.
  const baseAddress = pos;
  return {
    version,
    offsetSize,
    lengthSize,
    baseAddress,
    storedBaseAddress: storedBase ?? 0,
    superblockOffset: pos,
    rootObjectHeaderAddress: root,
    extensionAddress: extension,
    endOfFileAddress: eof,
    // Same test as HDF5's open check (stored EOF against the physical size).
    truncated: eof !== null && eof > fileSize,
  };
}
