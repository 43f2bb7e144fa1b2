/**
 * Chunk locations from the layout reader, checked against the HDF5 library
 * (h5wasm): for every chunked dataset of every corpus file, the stored bytes at
 * each reported offset, with the filters undone (deflate, shuffle,
 * fletcher32), must equal what HDF5 reads for that chunk's region; regions of
 * chunks reported as unallocated must hold the fill value. Files generated
 * here with h5wasm add cases the corpus lacks (extensible arrays whose
 * unlimited dimension is not the first, deep v2 B-trees, many chunks).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { FileByteSource, MemoryByteSource, type ByteSource } from "../src/hdf5/byteSource.ts";
import { decodeChunk } from "../src/hdf5/filterDecoders.ts";
import { swapElements } from "../src/hdf5/values.ts";
import {
  Hdf5LayoutReader,
  Hdf5UnsupportedError,
  type ChunkRecord,
  type DatasetLayoutInfo,
} from "../src/hdf5/layout/index.ts";
import {
  corpusFile,
  h5module,
  listDatasetPaths,
  loadFeatures,
  objectAddress,
  readRawDataset,
  withH5File,
  type H5File,
  type H5Module,
} from "./support/corpus.ts";
import h5wasm from "h5wasm";

/** Chunks compared per dataset (evenly spread) to bound the run time. */
const MAX_CHUNKS_COMPARED = 300;
/** Datasets larger than this (as read by h5wasm) are only listed, not compared. */
const MAX_DATASET_BYTES = 48 * 1024 * 1024;

type Metadata = ReturnType<H5Module["get_dataset_metadata"]>;

interface Stats {
  datasets: number;
  datasetsCompared: number;
  chunksListed: number;
  chunksCompared: Record<string, number>;
  unallocatedChecked: number;
  eaUnlimitedNotFirst: number;
  pagedFixedArray: number;
  skipped: Record<string, number>;
  /** Datasets the reader declined with Hdf5UnsupportedError. */
  unsupported: string[];
  failures: string[];
}

function newStats(): Stats {
  return {
    datasets: 0,
    datasetsCompared: 0,
    chunksListed: 0,
    chunksCompared: {},
    unallocatedChecked: 0,
    eaUnlimitedNotFirst: 0,
    pagedFixedArray: 0,
    skipped: {},
    unsupported: [],
    failures: [],
  };
}

function bump(rec: Record<string, number>, key: string, n = 1): void {
  rec[key] = (rec[key] ?? 0) + n;
}

/**
 * How h5wasm's bytes relate to the file's: "raw" (identical), a byte-swap unit
 * (h5wasm converts big-endian atomic types to little-endian), or null when the
 * memory form differs (variable-length data, mixed-order compounds).
 */
function comparison(md: Metadata): { swap: number } | null {
  const T = { INT: 0, FLOAT: 1, TIME: 2, STRING: 3, BITFIELD: 4, OPAQUE: 5, COMPOUND: 6, REF: 7, ENUM: 8, VLEN: 9, ARRAY: 10 };
  if (md.vlen || md.type === T.VLEN || md.type === T.REF) return null;
  switch (md.type) {
    case T.STRING:
    case T.OPAQUE:
      return { swap: 0 };
    case T.INT:
    case T.FLOAT:
    case T.TIME:
    case T.BITFIELD:
    case T.ENUM:
      return { swap: md.littleEndian ? 0 : md.size };
    case T.ARRAY: {
      const base = md.array_type;
      if (!base) return null;
      const inner = comparison(base);
      return inner;
    }
    case T.COMPOUND: {
      const members = md.compound_type?.members ?? [];
      for (const m of members) {
        const c = comparison(m);
        // Only all-little-endian compounds are read back unchanged.
        if (!c || c.swap !== 0) return null;
      }
      return { swap: 0 };
    }
    default:
      return null;
  }
}

/** Calls fn(chunkByteOffset, fullByteOffset, runBytes) for each row of the chunk's in-extent region. */
function forEachRun(
  shape: number[],
  chunkShape: number[],
  index: number[],
  es: number,
  fn: (chunkOff: number, fullOff: number, len: number) => boolean,
): boolean | "outside" {
  const rank = shape.length;
  const extent = shape.map((s, d) => Math.min(chunkShape[d]!, s - index[d]! * chunkShape[d]!));
  if (extent.some((e) => e <= 0)) return "outside";
  const cStride = new Array<number>(rank).fill(es);
  const fStride = new Array<number>(rank).fill(es);
  for (let d = rank - 2; d >= 0; d--) {
    cStride[d] = cStride[d + 1]! * chunkShape[d + 1]!;
    fStride[d] = fStride[d + 1]! * shape[d + 1]!;
  }
  const pos = new Array<number>(rank).fill(0);
  const rows = extent.slice(0, -1).reduce((a, b) => a * b, 1);
  const runLen = extent[rank - 1]! * es;
  for (let r = 0; r < rows; r++) {
    let co = 0;
    let fo = 0;
    for (let d = 0; d < rank; d++) {
      co += pos[d]! * cStride[d]!;
      fo += (index[d]! * chunkShape[d]! + pos[d]!) * fStride[d]!;
    }
    if (!fn(co, fo, runLen)) return false;
    for (let d = rank - 2; d >= 0; d--) {
      if (++pos[d]! < extent[d]!) break;
      pos[d] = 0;
    }
  }
  return true;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function spread<T>(xs: T[], n: number): T[] {
  if (xs.length <= n) return xs;
  const out: T[] = [];
  for (let i = 0; i < n; i++) out.push(xs[Math.floor((i * xs.length) / n)]!);
  return out;
}

/** Compares one dataset's chunks with h5wasm's reading of it. */
async function verifyDataset(
  source: ByteSource,
  info: DatasetLayoutInfo,
  chunks: ChunkRecord[],
  full: Uint8Array,
  md: Metadata,
  label: string,
  stats: Stats,
): Promise<void> {
  const layout = info.layout;
  if (layout.kind !== "chunked" || !info.shape) return;
  const cmp = comparison(md);
  if (!cmp) return void bump(stats.skipped, "type not comparable");
  const es = info.elementSize;
  const shape = info.shape;
  let compared = 0;
  for (const ch of spread(chunks, MAX_CHUNKS_COMPARED)) {
    const raw = await source.read(ch.offset, ch.size);
    assert.equal(raw.length, ch.size, `${label}: short read of chunk ${ch.index}`);
    let decoded: Uint8Array | string;
    try {
      // only the filters HDF5 always has are compared here; the rest are tested through conformance
      const unusual = info.filters.find((f, i) => !(ch.filterMask & (1 << i)) && ![1, 2, 3].includes(f.id));
      decoded = unusual ? `filter ${unusual.name ?? unusual.id}` : await decodeChunk(raw, info.filters, ch.filterMask, es, layout.chunkBytes);
    } catch (err) {
      // Partial edge chunks may be stored unfiltered (layout flag bit 0).
      if (layout.flags & 0x01) decoded = raw;
      else {
        stats.failures.push(`${label}: chunk ${ch.index} does not decode: ${(err as Error).message}`);
        continue;
      }
    }
    if (typeof decoded === "string") return void bump(stats.skipped, decoded);
    if (decoded.length < layout.chunkBytes) {
      stats.failures.push(`${label}: chunk ${ch.index} decodes to ${decoded.length} bytes, expected ${layout.chunkBytes}`);
      continue;
    }
    const chunk = decoded.slice(0, layout.chunkBytes);
    swapElements(chunk, cmp.swap);
    const ok = forEachRun(shape, layout.chunkShape, ch.index, es, (co, fo, len) =>
      bytesEqual(chunk.subarray(co, co + len), full.subarray(fo, fo + len)),
    );
    if (ok === "outside") continue;
    if (!ok) {
      stats.failures.push(`${label}: chunk ${JSON.stringify(ch.index)} at ${ch.offset} differs from HDF5's data`);
      if (stats.failures.length > 50) return;
      continue;
    }
    compared++;
  }
  bump(stats.chunksCompared, layout.indexType, compared);
  if (layout.indexType === "extensible-array" && info.maxShape && info.maxShape.indexOf(null) > 0) {
    stats.eaUnlimitedNotFirst += compared;
  }
  if (layout.indexType === "fixed-array" && chunks.length > 2 ** (layout.fixedArrayPageBits ?? 32)) {
    stats.pagedFixedArray += compared;
  }
  stats.datasetsCompared++;

  // Chunks not listed must read back as the fill value (proves none were missed).
  const grid = shape.map((s, d) => Math.ceil(s / layout.chunkShape[d]!));
  const total = grid.reduce((a, b) => a * b, 1);
  if (total > 20000 || info.fillValue.status === "undefined") return;
  const fill = new Uint8Array(es);
  if (info.fillValue.bytes) {
    if (info.fillValue.bytes.length !== es) return;
    fill.set(info.fillValue.bytes);
    swapElements(fill, cmp.swap);
  }
  const listed = new Set(chunks.map((c) => c.index.join(",")));
  const idx = new Array<number>(grid.length).fill(0);
  for (let n = 0; n < total; n++) {
    if (!listed.has(idx.join(","))) {
      const ok = forEachRun(shape, layout.chunkShape, idx, es, (_co, fo, len) => {
        for (let i = 0; i < len; i++) if (full[fo + i] !== fill[i % es]) return false;
        return true;
      });
      if (ok === false) {
        stats.failures.push(`${label}: chunk ${JSON.stringify(idx)} is not listed but HDF5 reads non-fill data there`);
        return;
      }
      stats.unallocatedChecked++;
    }
    for (let d = grid.length - 1; d >= 0; d--) {
      if (++idx[d]! < grid[d]!) break;
      idx[d] = 0;
    }
  }
}

/** Walks all datasets of an open h5wasm file and verifies the chunked ones. */
async function verifyOpenFile(f: H5File, M: H5Module, source: ByteSource, label: string, stats: Stats): Promise<void> {
  const reader = await Hdf5LayoutReader.open(source);
  for (const p of listDatasetPaths(f, M)) {
    let md: Metadata;
    try {
      md = M.get_dataset_metadata(f.file_id, p);
    } catch {
      continue; // HDF5 cannot open it either
    }
    let info: DatasetLayoutInfo;
    try {
      info = await reader.readDataset(objectAddress(f, M, p));
    } catch (err) {
      if (!(err instanceof Hdf5UnsupportedError)) throw err;
      stats.unsupported.push(`${label}${p}: ${err.message}`);
      continue;
    }
    if (info.layout.kind !== "chunked") continue;
    stats.datasets++;
    const chunks = await reader.listChunks(info);
    stats.chunksListed += chunks.length;
    for (let i = 1; i < chunks.length; i++) {
      assert.ok(
        chunks[i - 1]!.index.join() !== chunks[i]!.index.join(),
        `${label}${p}: chunk ${chunks[i]!.index} listed twice`,
      );
    }
    if (!info.shape || md.total_size * md.size > MAX_DATASET_BYTES) {
      bump(stats.skipped, "too large");
      continue;
    }
    const full = readRawDataset(f, M, p, md.total_size * md.size);
    if (!full) {
      bump(stats.skipped, "HDF5 cannot read");
      continue;
    }
    await verifyDataset(source, info, chunks, full, md, `${label}${p}`, stats);
  }
}

function report(name: string, stats: Stats): void {
  console.log(
    `${name}: ${stats.datasets} chunked datasets, ${stats.datasetsCompared} compared, ${stats.chunksListed} chunks listed, ` +
      `compared by index ${JSON.stringify(stats.chunksCompared)}, unallocated chunks checked ${stats.unallocatedChecked}, ` +
      `EA with unlimited dim not first ${stats.eaUnlimitedNotFirst}, paged fixed array ${stats.pagedFixedArray}, ` +
      `skipped ${JSON.stringify(stats.skipped)}`,
  );
  for (const f of stats.failures.slice(0, 30)) console.log("  FAIL", f);
  for (const u of stats.unsupported) console.log("  UNSUPPORTED", u);
}

test("chunks of every chunked corpus dataset match HDF5's data", { timeout: 150_000 }, async () => {
  const stats = newStats();
  const files = loadFeatures().filter((e) => e.open_ok && (e.layouts ?? []).includes("chunked"));
  assert.ok(files.length > 250, `expected the corpus to have > 250 files with chunked datasets, got ${files.length}`);
  for (const e of files) {
    const abs = corpusFile(e.path);
    const source = await FileByteSource.open(abs);
    try {
      await withH5File(abs, (f, M) => verifyOpenFile(f, M, source, e.path, stats));
    } catch (err) {
      stats.failures.push(`${e.path}: ${(err as Error).name}: ${(err as Error).message}`);
    } finally {
      await source.close();
    }
  }
  report("corpus", stats);
  assert.deepEqual(stats.failures, []);
  // The only feature declined in the corpus: metadata kept in a cache image.
  assert.deepEqual(
    stats.unsupported.filter((u) => !/metadata cache image/.test(u)),
    [],
  );
  // Every chunk index type must have been exercised with real data.
  for (const t of ["btree-v1", "single-chunk", "implicit", "fixed-array", "extensible-array", "btree-v2"]) {
    assert.ok((stats.chunksCompared[t] ?? 0) > 0, `no ${t} chunk was compared`);
  }
  assert.ok(stats.pagedFixedArray > 0, "no paged fixed array chunk was compared");
  assert.ok(stats.unallocatedChecked > 0, "no unallocated chunk was checked");
});

/** Creates a file in h5wasm's memory FS, lets `build` fill it, returns its bytes. */
async function makeFile(libver: "latest" | ["earliest", "latest"], build: (f: H5File) => void): Promise<Uint8Array> {
  const M = await h5module();
  const name = `/gen_${process.pid}_${Math.random().toString(36).slice(2)}.h5`;
  const f = new h5wasm.File(name, "w", { libver });
  try {
    build(f);
  } finally {
    f.close();
  }
  const bytes = M.FS!.readFile(name) as Uint8Array;
  M.FS!.unlink(name);
  return bytes;
}

function iota(n: number, mod = 2 ** 31): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = (i * 7919) % mod;
  return a;
}

async function verifyBytes(bytes: Uint8Array, label: string, stats: Stats): Promise<void> {
  const M = await h5module();
  const name = `/verify_${process.pid}_${Math.random().toString(36).slice(2)}.h5`;
  M.FS!.writeFile(name, bytes);
  const f = new h5wasm.File(name, "r");
  const source = new MemoryByteSource(bytes);
  try {
    await verifyOpenFile(f, M, source, label, stats);
  } finally {
    f.close();
    M.FS!.unlink(name);
  }
}

test("generated: extensible arrays with the unlimited dimension not first", { timeout: 60_000 }, async () => {
  const stats = newStats();
  const bytes = await makeFile("latest", (f) => {
    f.create_dataset({ name: "mid", data: iota(7 * 50), shape: [7, 50], maxshape: [7, null], chunks: [3, 4], dtype: "<i4" });
    f.create_dataset({
      name: "mid_gzip",
      data: iota(5 * 40 * 6),
      shape: [5, 40, 6],
      maxshape: [5, null, 6],
      chunks: [2, 3, 4],
      dtype: "<i4",
      compression: "gzip",
    });
    f.create_dataset({ name: "last", data: iota(9 * 33), shape: [9, 33], maxshape: [9, null], chunks: [4, 5], dtype: "<i4" });
    f.create_dataset({ name: "first", data: iota(33 * 9), shape: [33, 9], maxshape: [null, 9], chunks: [5, 4], dtype: "<i4" });
  });
  await verifyBytes(bytes, "generated-ea", stats);
  report("generated-ea", stats);
  assert.deepEqual(stats.failures, []);
  assert.equal(stats.datasetsCompared, 4);
  assert.ok(stats.eaUnlimitedNotFirst > 100, `EA chunks with unlimited dim not first: ${stats.eaUnlimitedNotFirst}`);
});

test("generated: many chunks (EA super blocks and pages, deep v2 and v1 B-trees, paged fixed array)", { timeout: 90_000 }, async () => {
  const stats = newStats();
  const latest = await makeFile("latest", (f) => {
    // 20000 chunks in an extensible array: data blocks in several super blocks.
    f.create_dataset({ name: "ea_many", data: iota(40000), shape: [40000], maxshape: [null], chunks: [2], dtype: "<i4" });
    // 140000 chunks: super block 13 onwards has paged data blocks (2048 elements, 1024 per page).
    f.create_dataset({ name: "ea_paged", data: iota(140000), shape: [140000], maxshape: [null], chunks: [1], dtype: "<i4" });
    // Two unlimited dimensions: v2 B-tree, deep enough for internal nodes at depth > 1.
    f.create_dataset({
      name: "bt2_many",
      data: iota(300 * 300),
      shape: [300, 300],
      maxshape: [null, null],
      chunks: [2, 2],
      dtype: "<i4",
      compression: "gzip",
    });
    // 5000 chunks in a fixed array: paged data block (1024 elements per page).
    f.create_dataset({ name: "fa_paged", data: iota(5000), shape: [5000], chunks: [1], dtype: "<i4" });
  });
  await verifyBytes(latest, "generated-latest", stats);
  const earliest = await makeFile(["earliest", "latest"], (f) => {
    f.create_dataset({ name: "bt1_many", data: iota(200 * 200), shape: [200, 200], maxshape: [null, null], chunks: [2, 2], dtype: "<i4" });
  });
  await verifyBytes(earliest, "generated-earliest", stats);
  report("generated-many", stats);
  assert.deepEqual(stats.failures, []);
  assert.equal(stats.datasetsCompared, 5);
  assert.equal(stats.chunksListed, 20000 + 140000 + 22500 + 5000 + 10000);
  assert.ok(stats.pagedFixedArray > 0);
  for (const t of ["extensible-array", "btree-v2", "fixed-array", "btree-v1"]) assert.ok((stats.chunksCompared[t] ?? 0) > 0, t);
});
