import type { ByteSource } from "../byteSource.ts";
import { Hdf5FormatError, Hdf5TruncatedError, Hdf5UnsupportedError } from "./errors.ts";

/** The file-wide parameters every decoder needs (from the superblock). */
export interface SizeContext {
  /** Bytes in an address field (2, 4 or 8). */
  readonly offsetSize: number;
  /** Bytes in a length field (2, 4 or 8). */
  readonly lengthSize: number;
  /** Absolute file position that stored addresses are relative to. */
  readonly baseAddress: number;
}

const TWO_32 = 2 ** 32;
/** Largest single read we accept; a bigger length in metadata means corruption. */
export const MAX_METADATA_READ = 256 * 1024 * 1024;

/**
 * Little-endian cursor over one decoded structure. Every read is bounds
 * checked so corrupt lengths throw instead of returning garbage.
 */
export class Cursor {
  pos = 0;
  constructor(
    readonly buf: Uint8Array,
    readonly ctx: SizeContext,
    /** What is being decoded, for error messages. */
    readonly what: string,
    /** Absolute file position of buf[0] (or -1 when not from the file). */
    readonly origin: number = -1,
  ) {}

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  fail(message: string): never {
    const where = this.origin >= 0 ? ` at file offset ${this.origin + this.pos}` : "";
    throw new Hdf5FormatError(`${this.what}${where}: ${message}`);
  }

  ensure(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      this.fail(`needs ${n} more byte(s) but only ${this.remaining} remain in the structure`);
    }
  }

  skip(n: number): void {
    this.ensure(n);
    this.pos += n;
  }

  seek(pos: number): void {
    if (pos < 0 || pos > this.buf.length) this.fail(`position ${pos} outside structure of ${this.buf.length} bytes`);
    this.pos = pos;
  }

  u8(): number {
    this.ensure(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.ensure(2);
    const b = this.buf;
    const p = this.pos;
    this.pos += 2;
    return b[p]! | (b[p + 1]! << 8);
  }

  u32(): number {
    this.ensure(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16)) + b[p + 3]! * 0x1000000;
  }

  /** Unsigned little-endian integer of n (0..8) bytes; null when all bytes are 0xFF. */
  uvarOrUndef(n: number): number | null {
    if (n < 0 || n > 8) this.fail(`unsupported integer width ${n}`);
    this.ensure(n);
    const b = this.buf;
    const p = this.pos;
    // hot path (every chunk record has several of these): shifts and multiplies, no Math.pow
    let lo = 0;
    let hi = 0;
    let and = 0xff;
    const nl = n < 4 ? n : 4;
    for (let i = nl - 1; i >= 0; i--) {
      const x = b[p + i]!;
      and &= x;
      lo = lo * 256 + x;
    }
    for (let i = n - 1; i >= 4; i--) {
      const x = b[p + i]!;
      and &= x;
      hi = hi * 256 + x;
    }
    this.pos += n;
    if (and === 0xff && n > 0) return null;
    if (hi >= 0x200000) {
      this.pos -= n;
      this.fail(`value too large (>= 2^53) in ${n}-byte field`);
    }
    return hi * TWO_32 + lo;
  }

  /** Unsigned integer of n bytes; all-0xFF is an error here. */
  uvar(n: number): number {
    const v = this.uvarOrUndef(n);
    if (v === null) {
      this.pos -= n;
      this.fail(`unexpected undefined (all 0xFF) ${n}-byte value`);
    }
    return v;
  }

  u64(): number {
    return this.uvar(8);
  }

  /** An address field: absolute file position (base applied), or null if undefined. */
  offset(): number | null {
    const v = this.uvarOrUndef(this.ctx.offsetSize);
    if (v === null) return null;
    return v + this.ctx.baseAddress;
  }

  /** An address field that must be defined. */
  requiredOffset(field: string): number {
    const v = this.offset();
    if (v === null) this.fail(`undefined ${field}`);
    return v as number;
  }

  /** A length field. */
  length(): number {
    return this.uvar(this.ctx.lengthSize);
  }

  /** A length field where all 0xFF means "undefined/unlimited". */
  lengthOrUndef(): number | null {
    return this.uvarOrUndef(this.ctx.lengthSize);
  }

  bytes(n: number): Uint8Array {
    this.ensure(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  /** Checks a 4-byte ASCII signature such as "TREE" or "FAHD". */
  signature(sig: string): void {
    this.ensure(sig.length);
    for (let i = 0; i < sig.length; i++) {
      if (this.buf[this.pos + i] !== sig.charCodeAt(i)) {
        const got = String.fromCharCode(...this.buf.subarray(this.pos, this.pos + sig.length));
        this.fail(`bad signature: expected "${sig}", found ${JSON.stringify(got)}`);
      }
    }
    this.pos += sig.length;
  }
}

/** Counters for the reads one reader has issued (for tests and benchmarks). */
export interface ReadStats {
  /** Reads sent to the ByteSource. */
  reads: number;
  /** Bytes received from the ByteSource. */
  bytes: number;
  /** Reads answered (fully or partly) from recently read blocks. */
  cacheHits: number;
}

interface CachedBlock {
  start: number;
  end: number;
  data: Promise<Uint8Array>;
}

/** Recently read metadata blocks kept to answer overlapping reads (speculative reads often cover the next structure). */
const CACHE_BLOCKS = 32;
const CACHE_MAX_BLOCK = 1 << 20;

/**
 * Exact-range reads on a ByteSource: short reads (EOF) become a clear
 * truncation error, absurd lengths become a format error. A small cache of
 * recent blocks (including reads still in flight) avoids fetching the same
 * bytes twice when structures sit next to each other.
 */
export class FileIo {
  readonly stats: ReadStats = { reads: 0, bytes: 0, cacheHits: 0 };
  private cache: CachedBlock[] = [];
  constructor(
    readonly source: ByteSource,
    readonly ctx: SizeContext,
  ) {}

  get size(): number {
    return this.source.size;
  }

  private check(pos: number, length: number, what: string): void {
    if (!Number.isSafeInteger(pos) || pos < 0) {
      throw new Hdf5FormatError(`${what}: invalid file position ${pos}`);
    }
    if (!Number.isSafeInteger(length) || length < 0 || length > MAX_METADATA_READ) {
      throw new Hdf5FormatError(`${what} at file offset ${pos}: implausible size ${length}`);
    }
    if (pos + length > this.source.size) {
      throw new Hdf5TruncatedError(
        `truncated file: ${what} at file offset ${pos} (+${length} bytes) extends past the end of the file (${this.source.size} bytes)`,
      );
    }
  }

  /** Exactly `length` bytes at absolute position `pos`. */
  async read(pos: number, length: number, what: string): Promise<Uint8Array> {
    this.check(pos, length, what);
    if (length === 0) return new Uint8Array(0);
    const end = pos + length;
    // A cached block holding the start of the range: use it, fetch only the rest.
    const hit = this.cache.find((b) => b.start <= pos && pos < b.end);
    if (hit) {
      this.stats.cacheHits++;
      const head = (await hit.data).subarray(pos - hit.start, Math.min(end, hit.end) - hit.start);
      if (hit.end >= end) return head;
      const tail = await this.read(hit.end, end - hit.end, what);
      const out = new Uint8Array(length);
      out.set(head);
      out.set(tail, head.length);
      return out;
    }
    const data = this.fetch(pos, length, what);
    if (length <= CACHE_MAX_BLOCK) {
      const block = { start: pos, end, data };
      this.cache.push(block);
      if (this.cache.length > CACHE_BLOCKS) this.cache.shift();
      // A failed read must not stay cached.
      data.catch(() => {
        this.cache = this.cache.filter((b) => b !== block);
      });
    }
    return data;
  }

  private async fetch(pos: number, length: number, what: string): Promise<Uint8Array> {
    const buf = await this.source.read(pos, length);
    this.stats.reads++;
    this.stats.bytes += buf.length;
    if (buf.length < length) {
      throw new Hdf5TruncatedError(
        `truncated file: ${what} at file offset ${pos}: wanted ${length} bytes, got ${buf.length}`,
      );
    }
    return buf.length === length ? buf : buf.subarray(0, length);
  }

  /**
   * Up to `length` bytes at `pos`, clamped to the end of the file; at least
   * `minimum` bytes must exist. Used for speculative reads of structures whose
   * size is only known after their header is decoded.
   */
  async readUpTo(pos: number, length: number, minimum: number, what: string): Promise<Uint8Array> {
    const avail = Math.max(0, this.source.size - pos);
    return this.read(pos, Math.max(minimum, Math.min(length, avail)), what);
  }

  cursor(buf: Uint8Array, origin: number, what: string): Cursor {
    return new Cursor(buf, this.ctx, what, origin);
  }
}

/** Validates the offset/length sizes announced by a superblock. */
export function checkFieldSizes(offsetSize: number, lengthSize: number): void {
  for (const [name, v] of [
    ["size of offsets", offsetSize],
    ["size of lengths", lengthSize],
  ] as const) {
    if (v !== 2 && v !== 4 && v !== 8) {
      if (v === 16 || v === 32) throw new Hdf5UnsupportedError(`superblock ${name} ${v} is not supported`);
      throw new Hdf5FormatError(`superblock: invalid ${name} ${v}`);
    }
  }
}

/** floor(log2(n)) for n >= 1 (0 for n = 0), like H5VM_log2_gen. */
export function log2floor(n: number | bigint): number {
  let v = BigInt(n);
  let r = 0;
  while (v > 1n) {
    v >>= 1n;
    r++;
  }
  return r;
}

/** Bytes needed to store n, like H5VM_limit_enc_size. */
export function limitEncSize(n: number | bigint): number {
  return Math.floor(log2floor(n) / 8) + 1;
}

export function product(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}
