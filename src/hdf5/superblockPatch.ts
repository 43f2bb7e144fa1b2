import type { SyncReader } from "./h5wasmRuntime.ts";
import { lookup3 } from "./lookup3.ts";

const SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * HDF5 2.0 refuses to open a file whose v2/v3 superblock still says "open
 * for writing" (a writer crashed or never closed it); HDF5 1.10, which the
 * reference used, reads such files. We only ever read, so h5wasm is shown
 * the superblock with those status flags cleared (checksum recomputed).
 * Returns the reader unchanged when there is nothing to patch.
 */
export function withClearedStatusFlags(size: number, reader: SyncReader): SyncReader {
  const head = new Uint8Array(12);
  for (let at = 0; at + 12 <= size; at = at === 0 ? 512 : at * 2) {
    if (reader(head, at) < 12) break;
    if (!SIGNATURE.every((b, i) => head[i] === b)) continue;
    const version = head[8]!;
    const flags = head[11]!;
    if (version < 2 || flags === 0) return reader;
    const offsetSize = head[9]!;
    const length = 12 + 4 * offsetSize;
    const patched = new Uint8Array(length + 4);
    if (reader(patched, at) < patched.length) return reader;
    patched[11] = 0;
    new DataView(patched.buffer).setUint32(length, lookup3(patched.subarray(0, length)), true);
    const start = at;
    const end = at + patched.length;
    return (target, position) => {
      const n = reader(target, position);
      const from = Math.max(start, position);
      const to = Math.min(end, position + n);
      if (from < to) target.set(patched.subarray(from - start, to - start), from - position);
      return n;
    };
  }
  return reader;
}
