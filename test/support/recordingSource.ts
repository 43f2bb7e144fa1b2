/** A ByteSource over bytes in memory that records the reads made of it (tests of readers and caches). */
import { MemoryByteSource, type ByteSource } from "../../src/hdf5/byteSource.ts";

export interface RecordingOptions {
  /** Each read waits this long first (so that reads overlap). Default 0: no wait. */
  delayMs?: number;
  /** Reads at offsets for which this is true fail. */
  fail?: (offset: number) => boolean;
}

export function recordingSource(bytes: Uint8Array, opts: RecordingOptions = {}): ByteSource & { reads: [number, number][] } {
  const inner = new MemoryByteSource(bytes);
  const reads: [number, number][] = [];
  return {
    size: bytes.length,
    reads,
    async read(offset, length) {
      reads.push([offset, length]);
      if (opts.delayMs) await new Promise((r) => setTimeout(r, opts.delayMs));
      if (opts.fail?.(offset)) throw new Error(`boom at ${offset}`);
      return inner.read(offset, length);
    },
  };
}
