import { open, type FileHandle } from "node:fs/promises";

/**
 * Random access to the bytes of an HDF5 file. Everything that parses file
 * structure reads through this, so the same parser works on a local file and
 * (with many requests in flight) on a remote one.
 */
export interface ByteSource {
  /** Total size in bytes, when known. */
  readonly size: number;
  /**
   * The `length` bytes at `offset`. Reads past the end resolve to the bytes
   * that exist (shorter than asked); callers that need all of them check.
   */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/**
 * Up to `length` bytes at `offset` of an open file of `size` bytes, by
 * positioned reads (short only at the end of the file).
 */
export async function readFromHandle(handle: FileHandle, size: number, offset: number, length: number): Promise<Uint8Array> {
  const n = Math.max(0, Math.min(length, size - offset));
  const buf = new Uint8Array(n);
  let done = 0;
  while (done < n) {
    const { bytesRead } = await handle.read(buf, done, n - done, offset + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done === n ? buf : buf.subarray(0, done);
}

/** A local file read with positioned reads; no whole-file buffering. */
export class FileByteSource implements ByteSource {
  private constructor(
    private readonly handle: FileHandle,
    readonly size: number,
  ) {}

  static async open(path: string): Promise<FileByteSource> {
    const handle = await open(path, "r");
    const { size } = await handle.stat();
    return new FileByteSource(handle, size);
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    return readFromHandle(this.handle, this.size, offset, length);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Bytes already in memory (tests, small files, tar members). */
export class MemoryByteSource implements ByteSource {
  readonly size: number;
  constructor(private readonly bytes: Uint8Array) {
    this.size = bytes.byteLength;
  }
  async read(offset: number, length: number): Promise<Uint8Array> {
    return this.bytes.subarray(offset, Math.min(offset + length, this.size));
  }
}
