/**
 * Smoke test over the whole corpus: every dataset HDF5 (h5wasm) can list is
 * read with the layout reader (readDataset + listChunks). Errors are allowed
 * only where HDF5 cannot open the dataset either, or for a feature the reader
 * declines explicitly (Hdf5UnsupportedError with a known message). Shapes,
 * maximum shapes and element sizes must agree with HDF5, and per-file chunk
 * counts with features.json. The corrupt/truncated files HDF5 cannot open
 * must give clean errors, never a crash or a hang.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { MemoryByteSource } from "../src/hdf5/byteSource.ts";
import { Hdf5FormatError, Hdf5LayoutReader, Hdf5UnsupportedError } from "../src/hdf5/layout/index.ts";
import { corpusFile, listDatasetPaths, loadFeatures, objectAddress, withH5File } from "./support/corpus.ts";
import { withDeadline } from "./support/deadline.ts";

/** Features the reader declines on purpose (message patterns). */
const KNOWN_UNSUPPORTED = [/metadata cache image/];

/** h5wasm reports unlimited as 2^64 - 1 (as a float). */
const H5_UNLIMITED_MIN = 2 ** 63;

type Metadata = {
  vlen?: boolean;
  type: number;
  compound_type?: { members: Metadata[] };
  array_type?: Metadata;
};

/** Whether a type has variable-length parts (HDF5 reports their in-memory size, not the stored one). */
function hasVariableLength(md: Metadata): boolean {
  if (md.vlen || md.type === 9) return true;
  if (md.array_type && hasVariableLength(md.array_type)) return true;
  return (md.compound_type?.members ?? []).some(hasVariableLength);
}

test("every dataset of every corpus file: readDataset + listChunks", { timeout: 150_000 }, async () => {
  const entries = loadFeatures();
  assert.ok(entries.length >= 825, `features.json lists ${entries.length} files`);
  let files = 0;
  let datasets = 0;
  let chunks = 0;
  const expectedErrors: string[] = [];
  const unsupported: string[] = [];
  const unexpected: string[] = [];
  const countMismatches: string[] = [];
  const t0 = Date.now();
  for (const e of entries) {
    if (!e.open_ok) continue;
    const abs = corpusFile(e.path);
    let fileChunks = 0;
    let fileComplete = true;
    try {
      await withH5File(abs, async (f, M) => {
        files++;
        const reader = await Hdf5LayoutReader.open(new MemoryByteSource(readFileSync(abs)));
        for (const p of listDatasetPaths(f, M)) {
          datasets++;
          const label = `${e.path}${p}`;
          let md: ReturnType<typeof M.get_dataset_metadata> | null = null;
          try {
            md = M.get_dataset_metadata(f.file_id, p);
          } catch {
            md = null;
          }
          try {
            const info = await withDeadline(20_000, label, () => reader.readDataset(objectAddress(f, M, p)));
            const list = await withDeadline(20_000, label, () => reader.listChunks(info));
            chunks += list.length;
            fileChunks += list.length;
            // (HDF5 sizes virtual datasets from their sources, and reports the
            // memory size of variable-length elements, not the stored one.)
            if (md && info.layout.kind !== "virtual") {
              assert.deepEqual(info.shape, md.shape, `${label}: shape`);
              const maxShape = md.maxshape?.map((m) => (m >= H5_UNLIMITED_MIN ? null : m)) ?? null;
              assert.deepEqual(info.maxShape, maxShape, `${label}: maxShape`);
              // Revised (HDF5 1.12) references are stored encoded, unlike their in-memory form.
              const revisedRef = info.datatype.class === 7 && info.datatype.version >= 4;
              if (!hasVariableLength(md) && !revisedRef) assert.equal(info.elementSize, md.size, `${label}: element size`);
              if (info.layout.kind === "chunked") assert.deepEqual(info.layout.chunkShape, md.chunks, `${label}: chunks`);
            }
          } catch (err) {
            fileComplete = false;
            const msg = `${label}: ${(err as Error).name}: ${(err as Error).message}`;
            if (err instanceof Hdf5UnsupportedError && KNOWN_UNSUPPORTED.some((re) => re.test(err.message))) {
              unsupported.push(msg);
            } else if (err instanceof Hdf5FormatError && md === null) {
              expectedErrors.push(msg); // HDF5 cannot open this dataset either
            } else {
              unexpected.push(msg);
            }
          }
        }
      });
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      // h5wasm cannot open the file at all: nothing to compare with.
      expectedErrors.push(`${e.path}: h5wasm: ${(err as Error).message.split("\n")[0]}`);
      continue;
    }
    const want = e.counts?.chunks;
    const h5pyComplete = (e.errors as unknown[] | undefined)?.length === 0;
    if (want !== undefined && fileComplete && h5pyComplete && want !== fileChunks) {
      countMismatches.push(`${e.path}: features.json has ${want} chunks, reader listed ${fileChunks}`);
    }
  }
  console.log(
    `corpus smoke: ${files} files, ${datasets} datasets, ${chunks} chunks in ${Date.now() - t0} ms; ` +
      `${expectedErrors.length} errors where HDF5 fails too, ${unsupported.length} unsupported, ${unexpected.length} unexpected`,
  );
  for (const m of [...expectedErrors, ...unsupported].slice(0, 40)) console.log("  expected:", m);
  for (const m of unexpected.slice(0, 40)) console.log("  UNEXPECTED:", m);
  for (const m of countMismatches.slice(0, 40)) console.log("  COUNT:", m);
  assert.ok(datasets > 12000, `only ${datasets} datasets walked`);
  assert.ok(chunks > 140000, `only ${chunks} chunks listed`);
  assert.deepEqual(unexpected, []);
  assert.deepEqual(countMismatches, []);
});

test("the corrupt and truncated files HDF5 cannot open give clean errors", { timeout: 120_000 }, async () => {
  const bad = loadFeatures().filter((e) => !e.open_ok);
  assert.equal(bad.length, 16);
  let opened = 0;
  let attempts = 0;
  let cleanErrors = 0;
  for (const e of bad) {
    const bytes = readFileSync(corpusFile(e.path));
    const label = e.path;
    let reader: Hdf5LayoutReader;
    try {
      reader = await withDeadline(10_000, label, () => Hdf5LayoutReader.open(new MemoryByteSource(bytes)));
      opened++;
    } catch (err) {
      assert.ok(err instanceof Hdf5FormatError, `${label}: open threw ${(err as Error).stack}`);
      cleanErrors++;
      continue;
    }
    // Try the root object and every byte position as a dataset address:
    // whatever happens must be a result or an Hdf5FormatError.
    const addrs = [reader.superblock.rootObjectHeaderAddress];
    for (let a = 0; a < Math.min(bytes.length, 6000); a++) addrs.push(a);
    await withDeadline(60_000, label, async () => {
      for (const a of addrs) {
        attempts++;
        try {
          const info = await reader.readDataset(a);
          await reader.listChunks(info);
        } catch (err) {
          assert.ok(err instanceof Hdf5FormatError, `${label} @${a}: threw ${(err as Error).stack}`);
          cleanErrors++;
        }
      }
    });
  }
  console.log(`bad files: ${bad.length}, superblock parsed in ${opened}, ${attempts} dataset attempts, ${cleanErrors} clean errors`);
  assert.ok(cleanErrors > 0);
});
