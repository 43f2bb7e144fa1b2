/**
 * Layout reader: superblocks, dataset metadata (dataspace, datatype, layout,
 * fill value, filters, shared messages), contiguous and compact data against
 * HDF5 (h5wasm), read efficiency, and robustness on truncated/corrupt input.
 * Chunk contents are checked in layout-chunks.test.ts, the whole corpus in
 * layout-corpus.test.ts.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { FileByteSource, MemoryByteSource, type ByteSource } from "../src/hdf5/byteSource.ts";
import {
  Hdf5FormatError,
  Hdf5LayoutReader,
  Hdf5TruncatedError,
  type DatasetLayoutInfo,
} from "../src/hdf5/layout/index.ts";
import { readObjectHeader } from "../src/hdf5/layout/objectHeader.ts";
import { FileIo } from "../src/hdf5/layout/reader.ts";
import {
  corpusFile,
  listDatasetPaths,
  loadFeatures,
  loadSyntheticExpected,
  objectAddress,
  readRawDataset,
  withH5File,
} from "./support/corpus.ts";
import { withDeadline } from "./support/deadline.ts";

/** Reads every dataset of a corpus file: path -> info (errors are thrown). */
async function readAll(rel: string): Promise<{ reader: Hdf5LayoutReader; infos: Map<string, DatasetLayoutInfo> }> {
  const abs = corpusFile(rel);
  const reader = await Hdf5LayoutReader.open(new MemoryByteSource(readFileSync(abs)));
  const infos = new Map<string, DatasetLayoutInfo>();
  await withH5File(abs, async (f, M) => {
    for (const p of listDatasetPaths(f, M)) infos.set(p, await reader.readDataset(objectAddress(f, M, p)));
  });
  return { reader, infos };
}

/** A ByteSource that records every read. */
class RecordingSource implements ByteSource {
  reads: [number, number][] = [];
  constructor(private readonly inner: ByteSource) {}
  get size(): number {
    return this.inner.size;
  }
  read(offset: number, length: number): Promise<Uint8Array> {
    this.reads.push([offset, length]);
    return this.inner.read(offset, length);
  }
  /** Bytes read more than once. */
  duplicateBytes(): number {
    const sorted = [...this.reads].sort((a, b) => a[0] - b[0]);
    let dup = 0;
    let coveredTo = -1;
    for (const [o, l] of sorted) {
      const end = o + l;
      if (o < coveredTo) dup += Math.min(end, coveredTo) - o;
      coveredTo = Math.max(coveredTo, end);
    }
    return dup;
  }
}

function decodeScalar(bytes: Uint8Array, dtype: string): number | bigint {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (dtype) {
    case "float32":
      return dv.getFloat32(0, true);
    case "float64":
      return dv.getFloat64(0, true);
    case "int16":
      return dv.getInt16(0, true);
    case "uint16":
      return dv.getUint16(0, true);
    case "int32":
      return dv.getInt32(0, true);
    case "int64":
      return Number(dv.getBigInt64(0, true));
    case "uint8":
      return dv.getUint8(0);
    default:
      throw new Error(`test does not decode ${dtype}`);
  }
}

test("corpus is present", () => {
  assert.ok(loadFeatures().length >= 800);
});

test("superblocks: versions 0-3, user blocks, 4-byte offsets", async () => {
  const cases = loadFeatures().filter(
    (e) =>
      e.open_ok &&
      (e.path.startsWith("synthetic/superblock_") ||
        (e.userblock ?? 0) > 0 ||
        e.sizeof_offsets === 4 ||
        e.superblock_version === 1),
  );
  assert.ok(cases.length >= 15, `only ${cases.length} superblock cases`);
  const seen = new Set<string>();
  for (const e of cases) {
    const src = await FileByteSource.open(corpusFile(e.path));
    try {
      const r = await Hdf5LayoutReader.open(src);
      const sb = r.superblock;
      assert.equal(sb.version, e.superblock_version, e.path);
      assert.equal(sb.offsetSize, e.sizeof_offsets, e.path);
      assert.equal(sb.superblockOffset, e.userblock ?? 0, e.path);
      assert.equal(sb.baseAddress, sb.superblockOffset, e.path);
      assert.equal(sb.truncated, false, e.path);
      // The root group object header must parse.
      const io = new FileIo(src, sb);
      const root = await readObjectHeader(io, sb.rootObjectHeaderAddress + sb.baseAddress);
      assert.ok(root.messages.length > 0, e.path);
      seen.add(`v${sb.version}/o${sb.offsetSize}/u${sb.superblockOffset}`);
    } finally {
      await src.close();
    }
  }
  for (const want of ["v0/o8/u0", "v2/o8/u0", "v3/o8/u0", "v0/o4/u0", "v0/o8/u512", "v3/o8/u4096", "v0/o8/u1024", "v1/o8/u0"]) {
    assert.ok(seen.has(want), `no case ${want} (seen ${[...seen].join(" ")})`);
  }
});

test("not HDF5 / empty input gives a clear error", async () => {
  await assert.rejects(Hdf5LayoutReader.open(new MemoryByteSource(new Uint8Array(0))), /not an HDF5 file/);
  const junk = new Uint8Array(5000).map((_, i) => (i * 31) & 0xff);
  await assert.rejects(Hdf5LayoutReader.open(new MemoryByteSource(junk)), Hdf5FormatError);
  const bytes = readFileSync(corpusFile("synthetic/layouts.h5"));
  const r = await Hdf5LayoutReader.open(new MemoryByteSource(bytes));
  // The root group is not a dataset; an address past the end is truncation.
  await assert.rejects(r.readDataset(r.superblock.rootObjectHeaderAddress), /not a dataset/);
  await assert.rejects(r.readDataset(bytes.length + 10), Hdf5TruncatedError);
});

test("synthetic/layouts.h5: layouts, shapes, chunk shapes and fill values match expected.json", async () => {
  const expected = loadSyntheticExpected()["layouts.h5"]!.datasets!;
  const { reader, infos } = await readAll("synthetic/layouts.h5");
  for (const [p, exp] of Object.entries(expected)) {
    const info = infos.get(p);
    assert.ok(info, `${p} not read`);
    assert.deepEqual(info.shape, exp.shape, `${p} shape`);
    if (exp.chunks) {
      assert.equal(info.layout.kind, "chunked", p);
      if (info.layout.kind === "chunked") assert.deepEqual(info.layout.chunkShape, exp.chunks, `${p} chunks`);
    } else {
      assert.notEqual(info.layout.kind, "chunked", p);
    }
    const dtype = exp.dtype as string;
    const fv = exp.fillvalue;
    if (typeof fv === "number" && dtype !== "object") {
      if (fv === 0) {
        // Zero is the library default; it may or may not be stored.
        if (info.fillValue.bytes) assert.equal(Number(decodeScalar(info.fillValue.bytes, dtype)), 0, p);
      } else {
        assert.equal(info.fillValue.defined, true, `${p} fill defined`);
        assert.equal(info.fillValue.status, "user", p);
        assert.equal(Number(decodeScalar(info.fillValue.bytes!, dtype)), fv, `${p} fill value`);
      }
    }
  }
  const get = (p: string): DatasetLayoutInfo => infos.get(p)!;
  assert.equal(get("/compact_small").layout.kind, "compact");
  assert.deepEqual(get("/contiguous_unallocated").layout, { kind: "contiguous", address: null, size: 400 });
  assert.equal(get("/null_dataspace").shape, null);
  assert.equal(get("/null_dataspace").maxShape, null);
  assert.deepEqual(get("/scalar_f64").shape, []);
  assert.deepEqual(get("/zero_size_chunked").shape, [0, 16]);
  assert.deepEqual(await reader.listChunks(get("/zero_size_chunked")), []);
  assert.deepEqual(await reader.listChunks(get("/chunked_unallocated")), []);
  assert.equal(get("/chunked_early_alloc").fillValue.allocTime, 1);
  assert.ok(get("/chunked_maxshape_gt_shape").maxShape!.some((m, i) => m !== get("/chunked_maxshape_gt_shape").shape![i]));
  const sparse = await reader.listChunks(get("/chunked_sparse"));
  assert.ok(sparse.length > 0 && sparse.length < 100, `sparse chunks: ${sparse.length}`);
  const dims5 = await reader.listChunks(get("/dims_5d"));
  assert.equal(dims5.length, 2 * 2 * 2 * 1 * 2);
});

test("fill values of other types, time flags and defaults (synthetic/misc.h5)", async () => {
  const { infos } = await readAll("synthetic/misc.h5");
  const cmp = infos.get("/fill_compound")!.fillValue;
  assert.equal(cmp.status, "user");
  const dv = new DataView(cmp.bytes!.buffer, cmp.bytes!.byteOffset);
  assert.equal(dv.getInt32(0, true), -1);
  assert.equal(dv.getFloat64(4, true), 9.5);
  assert.ok(Number.isNaN(decodeScalar(infos.get("/fill_float")!.fillValue.bytes!, "float32")));
  assert.deepEqual([...infos.get("/fill_fixed_string")!.fillValue.bytes!], [...Buffer.from("none")]);
  assert.equal(infos.get("/fill_time_never")!.fillValue.fillTime, 1);
  assert.equal(infos.get("/external_storage")!.externalFiles, true);
  assert.equal(infos.get("/signal")!.externalFiles, false);
  assert.equal(infos.get("/vds")!.layout.kind, "virtual");
  // A dataset whose datatype is a committed (shared) datatype in another object header.
  assert.equal(infos.get("/points_committed_type")!.elementSize, 16);
  assert.equal(infos.get("/points_committed_type")!.datatype.class, 6);
});

test("filter pipelines: ids, names, client data, per-chunk filter masks (synthetic/filters.h5)", async () => {
  const { reader, infos } = await readAll("synthetic/filters.h5");
  const ids = (p: string): number[] => infos.get(p)!.filters.map((f) => f.id);
  assert.deepEqual(ids("/shuffle_deflate_fletcher32"), [2, 1, 3]);
  assert.deepEqual(
    infos.get("/shuffle_deflate_fletcher32")!.filters.map((f) => f.name),
    ["shuffle", "deflate", "fletcher32"],
  );
  assert.deepEqual(infos.get("/deflate9")!.filters[0]!.cdValues, [9]);
  assert.deepEqual(ids("/lzf"), [32000]);
  assert.deepEqual(ids("/blosc_lz4_shuffle"), [32001]);
  assert.deepEqual(ids("/nbit_int20"), [5]);
  assert.equal(infos.get("/gzip_be_2d")!.datatype.byteOrder, "BE");
  const masked = await reader.listChunks(infos.get("/filter_mask_skipped_chunk")!);
  assert.equal(masked.length, 3);
  assert.ok(masked.some((c) => c.filterMask !== 0), "a chunk stored with the filter skipped");
  const many = await reader.listChunks(infos.get("/many_chunks_20000")!);
  assert.equal(many.length, 20000);
  assert.deepEqual(many[19999]!.index, [19999]);
});

test("messages shared through the SOHM heap are resolved", async () => {
  const files = [
    "hdf5-1.10.8/tools/test/h5stat/testfiles/h5stat_tsohm.h5",
    "hdf5-1.10.8/test/h5fc_ext2_sf.h5",
    "hdf5-1.10.8/tools/test/h5format_convert/testfiles/h5fc_ext1_s.h5",
  ];
  let sohmShared = 0;
  for (const rel of files) {
    const abs = corpusFile(rel);
    const src = new MemoryByteSource(readFileSync(abs));
    const reader = await Hdf5LayoutReader.open(src);
    const io = new FileIo(src, reader.superblock);
    await withH5File(abs, async (f, M) => {
      for (const p of listDatasetPaths(f, M)) {
        const addr = objectAddress(f, M, p);
        const info = await reader.readDataset(addr);
        const md = M.get_dataset_metadata(f.file_id, p);
        assert.deepEqual(info.shape, md.shape, `${rel}${p}`);
        assert.equal(info.elementSize, md.size, `${rel}${p}`);
        // Count messages that really are in the SOHM heap (shared flag + shared message type 1).
        const oh = await readObjectHeader(io, addr + reader.superblock.baseAddress);
        sohmShared += oh.messages.filter((m) => m.flags & 0x02 && m.data[0] === 3 && m.data[1] === 1).length;
      }
    });
  }
  assert.ok(sohmShared > 0, "no SOHM-shared message was exercised");
});

test("contiguous and compact data equal HDF5's reading (all corpus files)", { timeout: 120_000 }, async () => {
  let contiguous = 0;
  let compact = 0;
  let unallocated = 0;
  const failures: string[] = [];
  for (const e of loadFeatures()) {
    if (!e.open_ok) continue;
    const layouts = e.layouts ?? [];
    if (!layouts.includes("contiguous") && !layouts.includes("compact")) continue;
    const abs = corpusFile(e.path);
    const bytes = readFileSync(abs);
    let reader: Hdf5LayoutReader;
    try {
      reader = await Hdf5LayoutReader.open(new MemoryByteSource(bytes));
    } catch (err) {
      failures.push(`${e.path}: ${(err as Error).message}`);
      continue;
    }
    await withH5File(abs, async (f, M) => {
      for (const p of listDatasetPaths(f, M)) {
        let md;
        try {
          md = M.get_dataset_metadata(f.file_id, p);
        } catch {
          continue;
        }
        // Plain little-endian numbers, fixed strings and opaque data read back unchanged.
        const simple = !md.vlen && (md.type === 3 || md.type === 5 || ((md.type === 0 || md.type === 1) && md.littleEndian));
        if (!simple || !md.shape || md.total_size * md.size > 32 << 20) continue;
        let info: DatasetLayoutInfo;
        try {
          info = await reader.readDataset(objectAddress(f, M, p));
        } catch (err) {
          failures.push(`${e.path}${p}: ${(err as Error).message}`);
          continue;
        }
        const layout = info.layout;
        if (info.externalFiles || (layout.kind !== "contiguous" && layout.kind !== "compact")) continue;
        const full = readRawDataset(f, M, p, md.total_size * md.size);
        if (!full) continue;
        if (layout.kind === "compact") {
          if (!Buffer.from(layout.data.subarray(0, full.length)).equals(full)) failures.push(`${e.path}${p}: compact data differs`);
          compact++;
        } else if (layout.address === null) {
          unallocated++;
        } else {
          if (layout.size < full.length) failures.push(`${e.path}${p}: contiguous size ${layout.size} < ${full.length}`);
          const stored = bytes.subarray(layout.address, layout.address + full.length);
          if (!Buffer.from(stored).equals(full)) failures.push(`${e.path}${p}: contiguous data at ${layout.address} differs`);
          contiguous++;
        }
      }
    });
  }
  console.log(`contiguous datasets compared: ${contiguous}, compact: ${compact}, unallocated: ${unallocated}`);
  assert.deepEqual(failures, []);
  assert.ok(contiguous > 1000 && compact > 10 && unallocated > 10, `${contiguous} / ${compact} / ${unallocated}`);
});

test("reads are few, small and never repeat bytes", async () => {
  const cases: [string, string][] = [
    ["synthetic/chunk_index_latest.h5", "/fixed_array_many"],
    ["synthetic/chunk_index_latest.h5", "/btree_v2"],
    ["synthetic/chunk_index_latest.h5", "/extensible_array"],
    ["synthetic/chunk_index_earliest.h5", "/fixed_array_many"],
    ["synthetic/filters.h5", "/many_chunks_20000"],
    ["synthetic/nwb_like_large_chunks.h5", "/acquisition/ElectricalSeries/data"],
    ["jhdf/jhdf/src/test/resources/hdf5/fixed_array_paged_datasets.hdf5", "/filtered_fixed_array/int16_five_page"],
  ];
  for (const [rel, p] of cases) {
    const abs = corpusFile(rel);
    const addr = await withH5File(abs, (f, M) => {
      const paths = listDatasetPaths(f, M);
      assert.ok(paths.includes(p), `${rel}: no ${p}`);
      return { path: p, addr: objectAddress(f, M, p) };
    });
    const rec = new RecordingSource(new MemoryByteSource(readFileSync(abs)));
    const reader = await Hdf5LayoutReader.open(rec);
    rec.reads = []; // measure the dataset, not the superblock search
    const info = await reader.readDataset(addr.addr);
    const chunks = await reader.listChunks(info);
    const bytes = rec.reads.reduce((a, [, l]) => a + l, 0);
    console.log(
      `${rel}${addr.path}: ${info.layout.kind}/${info.layout.kind === "chunked" ? info.layout.indexType : ""}, ` +
        `${chunks.length} chunks, ${rec.reads.length} reads, ${bytes} bytes (${(bytes / Math.max(1, chunks.length)).toFixed(1)} B/chunk), ` +
        `${rec.duplicateBytes()} bytes read twice`,
    );
    assert.equal(rec.duplicateBytes(), 0, `${rel}${addr.path}: bytes read twice`);
    // Index metadata only: a few dozen bytes per chunk at most.
    assert.ok(bytes <= 64 * 1024 + chunks.length * 64, `${rel}${addr.path}: read ${bytes} bytes for ${chunks.length} chunks`);
    assert.ok(rec.reads.every(([, l]) => l <= 8 * 1024 * 1024));
  }
});

/** Opens and walks every dataset address; any failure must be an Hdf5FormatError. */
async function walkExpectingCleanErrors(bytes: Uint8Array, addrs: number[], label: string): Promise<number> {
  let errors = 0;
  let reader: Hdf5LayoutReader;
  try {
    reader = await Hdf5LayoutReader.open(new MemoryByteSource(bytes));
  } catch (err) {
    assert.ok(err instanceof Hdf5FormatError, `${label}: open threw ${(err as Error).stack}`);
    return 1;
  }
  for (const a of addrs) {
    try {
      const info = await reader.readDataset(a);
      await reader.listChunks(info);
    } catch (err) {
      assert.ok(err instanceof Hdf5FormatError, `${label}: dataset ${a} threw ${(err as Error).stack}`);
      assert.ok((err as Error).message.length > 10);
      errors++;
    }
  }
  return errors;
}

test("truncated files throw clear errors", { timeout: 60_000 }, async () => {
  const files = [
    "synthetic/chunk_index_latest.h5",
    "synthetic/chunk_index_earliest.h5",
    "synthetic/offsets4.h5",
    "hdf5-1.10.8/test/h5fc_ext1_f.h5",
    "hdf5-1.10.8/tools/test/h5stat/testfiles/h5stat_tsohm.h5",
  ];
  for (const rel of files) {
    const abs = corpusFile(rel);
    const bytes = readFileSync(abs);
    const addrs = await withH5File(abs, (f, M) => listDatasetPaths(f, M).map((p) => objectAddress(f, M, p)));
    let errors = 0;
    for (const frac of [0.02, 0.1, 0.3, 0.5, 0.8, 0.95, 0.999]) {
      const cut = bytes.subarray(0, Math.floor(bytes.length * frac));
      errors += await withDeadline(10_000, `${rel} cut at ${frac}`, () =>
        walkExpectingCleanErrors(cut, addrs, `${rel} cut at ${frac}`),
      );
    }
    assert.ok(errors > 0, `${rel}: truncation never noticed`);
  }
  // The reported error says what happened.
  const bytes = readFileSync(corpusFile("synthetic/chunk_index_latest.h5"));
  const r = await Hdf5LayoutReader.open(new MemoryByteSource(bytes.subarray(0, 9000)));
  const addr = await withH5File(corpusFile("synthetic/chunk_index_latest.h5"), (f, M) =>
    objectAddress(f, M, "/fixed_array_many"),
  );
  await assert.rejects(
    (async () => r.listChunks(await r.readDataset(addr)))(),
    (err: Error) => err instanceof Hdf5TruncatedError && /truncated file/.test(err.message),
  );
});

test("randomly corrupted metadata never crashes or hangs", { timeout: 90_000 }, async () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const files = [
    "synthetic/chunk_index_latest.h5",
    "synthetic/chunk_index_earliest.h5",
    "synthetic/superblock_v3.h5",
    "hdf5-1.10.8/test/h5fc_ext1_f.h5",
    "hdf5-1.10.8/test/h5fc_ext2_sf.h5",
    "jhdf/jhdf/src/test/resources/hdf5/fixed_array_paged_datasets.hdf5",
  ];
  let runs = 0;
  let failures = 0;
  for (const rel of files) {
    const abs = corpusFile(rel);
    const orig = readFileSync(abs);
    const addrs = await withH5File(abs, (f, M) => listDatasetPaths(f, M).map((p) => objectAddress(f, M, p)));
    // Corrupt within the first 16 KiB, where object headers and indexes mostly live.
    const span = Math.min(orig.length, 16384);
    for (let k = 0; k < 60; k++) {
      const bytes = Uint8Array.from(orig);
      const flips = 1 + rand(8);
      for (let i = 0; i < flips; i++) {
        const at = rand(span);
        bytes[at] = rand(4) === 0 ? 0xff : rand(256);
      }
      failures += await withDeadline(10_000, `${rel} corruption ${k}`, () =>
        walkExpectingCleanErrors(bytes, addrs, `${rel} corruption ${k}`),
      );
      runs++;
    }
  }
  console.log(`corruption runs: ${runs}, clean errors: ${failures}`);
  assert.ok(failures > 0);
});
