import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import type { SyncReader } from "../src/hdf5/h5wasmRuntime.ts";
import { lookup3 } from "../src/hdf5/lookup3.ts";
import { withClearedStatusFlags } from "../src/hdf5/superblockPatch.ts";
import { corpusFile } from "./support/corpus.ts";

function memoryReader(bytes: Uint8Array): SyncReader {
  return (target, position) => {
    const part = bytes.subarray(position, position + target.length);
    target.set(part);
    return part.length;
  };
}

function superblockOf(bytes: Uint8Array): { len: number; stored: number } {
  const len = 12 + 4 * bytes[9]!;
  return { len, stored: new DataView(bytes.buffer, bytes.byteOffset).getUint32(len, true) };
}

test("lookup3 reproduces the checksums HDF5 stored in v2/v3 superblocks", () => {
  for (const rel of ["synthetic/superblock_v2.h5", "synthetic/superblock_v3.h5", "hdf5-1.10.8/tools/test/misc/testfiles/h5clear_sec2_v3.h5"]) {
    const bytes = new Uint8Array(readFileSync(corpusFile(rel)));
    const { len, stored } = superblockOf(bytes);
    assert.equal(lookup3(bytes.subarray(0, len)), stored, rel);
  }
});

test("a superblock marked 'open for write' is shown cleared, with a valid checksum", () => {
  const bytes = new Uint8Array(readFileSync(corpusFile("hdf5-1.10.8/tools/test/misc/testfiles/h5clear_sec2_v3.h5")));
  assert.notEqual(bytes[11], 0, "the corpus file has status flags set");
  const reader = withClearedStatusFlags(bytes.length, memoryReader(bytes));
  const seen = new Uint8Array(bytes.length);
  // read in odd pieces so the overlay is exercised across boundaries
  for (let at = 0; at < bytes.length; at += 7) reader(seen.subarray(at, Math.min(at + 7, bytes.length)), at);
  assert.equal(seen[11], 0, "flags cleared");
  const { len, stored } = superblockOf(seen);
  assert.equal(lookup3(seen.subarray(0, len)), stored, "checksum recomputed");
  assert.deepEqual(seen.subarray(len + 4), bytes.subarray(len + 4), "the rest of the file is untouched");
});

test("files without status flags are read unchanged", () => {
  const bytes = new Uint8Array(readFileSync(corpusFile("synthetic/superblock_v3.h5")));
  const base = memoryReader(bytes);
  assert.equal(withClearedStatusFlags(bytes.length, base), base);
});
