/**
 * The pieces under readSlice: the ref store (value forms, templates, padding
 * rule, cache), codecs (fletcher32, json2, chunk size check), chunk location
 * for /chunk, and the HDF5 path resolver used for external array links.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { deflateSync, inflateSync } from "node:zlib";
import * as zarr from "zarrita";
import { FileByteSource } from "../src/hdf5/byteSource.ts";
import { unshuffle } from "../src/hdf5/filterDecoders.ts";
import { Hdf5LayoutReader } from "../src/hdf5/layout/index.ts";
import { encodeJson2 } from "../src/lindi/codecs/json2.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { PyFloat, type PyJson } from "../src/lindi/pythonJson.ts";
import { ChunkNotFoundError, InvalidChunkKeyError, locateChunk, parseChunkKey } from "../src/slices/chunkBytes.ts";
import { ChecksumError, ChunkSizeError, fletcher32, Json2Codec, registerLindiCodecs, stripFletcher32, ZlibCodec } from "../src/slices/codecs.ts";
import { ExternalDatasetCache, sourceOpener } from "../src/slices/external.ts";
import { Hdf5PathError, resolveHdf5Path } from "../src/slices/hdf5Path.ts";
import { ChunkDecodeError, readSlice } from "../src/slices/readSlice.ts";
import { ChunkCache, fileRangeReader, InvalidRefError, LindiRefStore, normalizeKey, ShortReadError, type RangeReader } from "../src/slices/refStore.ts";
import { parseSelection } from "../src/slices/selection.ts";
import { corpusFile, listDatasetPaths, objectAddress, withH5File } from "./support/corpus.ts";
import { compareWithH5 } from "./support/sliceCompare.ts";

/** A range reader over in-memory "files" that records its calls. */
function memoryReader(files: Record<string, Uint8Array>): RangeReader & { calls: string[] } {
  const calls: string[] = [];
  const r = (async (url: string, offset: number, length: number) => {
    calls.push(`${url}@${offset}+${length}`);
    const f = files[url];
    if (!f) throw new Error(`no file ${url}`);
    const b = f.slice(offset, offset + length);
    if (b.length < length) throw new ShortReadError(url, offset, length, b.length);
    return b;
  }) as RangeReader & { calls: string[] };
  r.calls = calls;
  return r;
}

const zarray = (over: Record<string, PyJson>): Record<string, PyJson> => ({
  chunks: [4],
  compressor: null,
  dtype: "<i2",
  fill_value: 0,
  filters: null,
  order: "C",
  shape: [10],
  zarr_format: 2,
  ...over,
});

test("store: object, string and base64 values, templates, absent keys, invalid refs", async () => {
  const file = Uint8Array.from({ length: 64 }, (_, i) => i);
  const reader = memoryReader({ "https://h/f.h5": file });
  const store = new LindiRefStore(
    {
      refs: {
        ".zgroup": { zarr_format: 2 },
        "a/.zattrs": { big: 18446744073709551615n, f: new PyFloat(1), s: "ü" },
        "a/.zarray": '{"shape": [1]}',
        "a/plain": "\u0002\u00013",
        "a/b64": "base64:AAEC",
        "a/r": ["{{u1}}", 10, 4],
        "a/r2": ["https://h/f.h5", 0, 0],
        "bad/two": ["x", 1] as PyJson,
        "bad/types": [1, 2, 3],
        "bad/float": new PyFloat(1),
        "bad/neg": ["x", -1, 2],
      },
      templates: { u1: "https://h/f.h5" },
    },
    { rangeReader: reader, cache: null },
  );
  assert.equal(new TextDecoder().decode(await store.get("/.zgroup")), '{"zarr_format":2}');
  // Python json.dumps text: big ints exact, floats as floats, ASCII escapes
  assert.equal(new TextDecoder().decode(await store.get("a/.zattrs")), '{"big":18446744073709551615,"f":1.0,"s":"\\u00fc"}');
  assert.deepEqual(store.json("a/.zarray"), { shape: [1] });
  assert.deepEqual([...(await store.get("a/plain"))!], [2, 1, 0x33]);
  assert.deepEqual([...(await store.get("/a/b64"))!], [0, 1, 2]);
  assert.deepEqual([...(await store.get("a/r"))!], [10, 11, 12, 13]);
  assert.deepEqual(reader.calls, ["https://h/f.h5@10+4"]);
  assert.equal((await store.get("a/r2"))!.length, 0);
  assert.equal(await store.get("a/missing"), undefined);
  assert.deepEqual(store.locate("a/r"), { kind: "range", url: "https://h/f.h5", offset: 10, length: 4 });
  for (const k of ["bad/two", "bad/types", "bad/float", "bad/neg"]) assert.throws(() => store.locate(k), InvalidRefError, k);
});

test("store: short last pieces are zero-padded only for unfiltered, uncompressed arrays", async () => {
  const raw = new Int16Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
  const file = new Uint8Array(raw.buffer);
  const refs: Record<string, PyJson> = {
    "plain/.zarray": zarray({}),
    "plain/0": ["f", 0, 8],
    "plain/1": ["f", 8, 8],
    "plain/2": ["f", 16, 4], // the short last piece of a split dataset
    "zlib/.zarray": zarray({ filters: [{ id: "zlib", level: 4 }] }),
    "zlib/2": ["f", 16, 4],
    "comp/.zarray": zarray({ compressor: { id: "zlib", level: 1 } }),
    "comp/2": ["f", 16, 4],
  };
  const store = new LindiRefStore({ refs }, { rangeReader: memoryReader({ f: file }), cache: null });
  assert.deepEqual([...(await store.get("plain/2"))!], [9, 0, 10, 0, 0, 0, 0, 0]);
  assert.equal((await store.get("zlib/2"))!.length, 4);
  assert.equal((await store.get("comp/2"))!.length, 4);
  const r = await readSlice({ refs }, "plain", "", { store });
  assert.deepEqual(r.data, raw);
});

test("split datasets (short last piece) read equal to h5wasm", async () => {
  const rel = "generated-nwb/ecephys.nwb";
  const abs = corpusFile(rel);
  const doc = await indexLocalFile(abs, { url: abs, splitBytes: 1000 });
  let split = 0;
  await withH5File(abs, async (f, M) => {
    for (const p of listDatasetPaths(f, M)) {
      const z = doc.refs[`${p.slice(1)}/.zarray`] as Record<string, PyJson> | undefined;
      const shape = (M.get_dataset_metadata(f.file_id, p).shape ?? []) as number[];
      if (!z || JSON.stringify(z["chunks"]) === JSON.stringify(z["shape"])) continue;
      if (z["filters"] === null) split++;
      const res = await readSlice(doc, p, "", { rangeReader: fileRangeReader(), cache: null });
      assert.deepEqual(compareWithH5(f, M, p, res, parseSelection("", shape)), [], p);
    }
  });
  assert.ok(split >= 2, `${split} split datasets`);
});

test("cache: concurrent misses share one fetch; bounded in bytes; big ranges not kept", async () => {
  const file = new Uint8Array(4096);
  const reader = memoryReader({ f: file });
  const cache = new ChunkCache({ maxBytes: 2048, maxEntryBytes: 1024 });
  const store = new LindiRefStore({ refs: { a: ["f", 0, 1000], b: ["f", 1000, 1000], c: ["f", 2000, 1000], big: ["f", 0, 2000] } }, { rangeReader: reader, cache });
  await Promise.all([store.get("a"), store.get("a"), store.get("a")]);
  assert.equal(reader.calls.length, 1);
  await store.get("a");
  assert.equal(reader.calls.length, 1);
  await store.get("b");
  await store.get("c"); // evicts a (LRU, 2048 bytes)
  assert.ok(cache.size <= 2048);
  await store.get("a");
  assert.equal(reader.calls.length, 4);
  await store.get("big");
  await store.get("big");
  assert.equal(reader.calls.length, 6, "ranges above maxEntryBytes are not kept");
  // batched prefetch: one `many` call for the missing ranges
  const many: string[] = [];
  const batchReader = memoryReader({ f: file });
  batchReader.many = async (_url, ranges) => {
    many.push(ranges.map((r) => r.offset).join(","));
    return ranges.map((r) => file.slice(r.offset, r.offset + r.length));
  };
  const s2 = new LindiRefStore({ refs: { a: ["f", 0, 10], b: ["f", 10, 10], c: ["f", 20, 10] } }, { rangeReader: batchReader, cache: new ChunkCache() });
  await s2.get("b");
  await s2.prefetch(["a", "b", "c"]);
  await Promise.all([s2.get("a"), s2.get("c")]);
  assert.deepEqual(many, ["0,20"]);
  assert.equal(batchReader.calls.length, 1);
});

test("chunk cache: ranges a streaming batch hands over are usable before the batch ends; a failed batch fails only the rest", async () => {
  const cache = new ChunkCache();
  const file = Uint8Array.from({ length: 64 }, (_, i) => i);
  let finish!: (err?: Error) => void;
  const gate = new Promise<void>((resolve, reject) => (finish = (err) => (err ? reject(err) : resolve())));
  const ranges = [
    { offset: 0, length: 8 },
    { offset: 8, length: 8 },
    { offset: 32, length: 8 },
  ];
  const done = cache.prefetchMany("u", ranges, async (missing, onRange) => {
    assert.equal(missing.length, 3);
    // the first range arrives as a view of a larger buffer, as a merged request gives it
    onRange(0, file.subarray(0, 8));
    await gate;
    return missing.map((r) => file.slice(r.offset, r.offset + r.length));
  });
  const neverFetch = () => Promise.reject(new Error("fetched again"));
  const first = await Promise.race([cache.getOrFetch("u", 0, 8, neverFetch), new Promise<"pending">((r) => setTimeout(() => r("pending"), 50))]);
  assert.notEqual(first, "pending", "the handed-over range waits for the whole batch");
  assert.deepEqual([...(first as Uint8Array)], [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal((first as Uint8Array).buffer.byteLength, 8, "the cache keeps its own copy, not the merged buffer");
  const second = cache.getOrFetch("u", 8, 8, neverFetch);
  const third = cache.getOrFetch("u", 32, 8, neverFetch);
  finish(new Error("connection reset"));
  await done;
  await assert.rejects(second, /connection reset/);
  await assert.rejects(third, /connection reset/);
  assert.ok(cache.has("u", 0, 8), "the range that arrived stays cached");
  assert.ok(!cache.has("u", 8, 8));
  // a short range handed over is a ShortReadError for that range only
  const c2 = new ChunkCache();
  const batch2 = c2.prefetchMany("v", ranges.slice(0, 2), async (missing, onRange) => {
    onRange(1, file.subarray(8, 12));
    return missing.map((r) => file.slice(r.offset, r.offset + r.length));
  });
  const short = c2.getOrFetch("v", 8, 8, neverFetch);
  await batch2;
  assert.deepEqual([...(await c2.getOrFetch("v", 0, 8, neverFetch))], [0, 1, 2, 3, 4, 5, 6, 7]);
  await assert.rejects(short, ShortReadError);
});

test("fletcher32: verified, stripped, corrupt chunks rejected", async () => {
  // round trip on an odd-length buffer (the real-file read below checks the algorithm against HDF5)
  const data = Uint8Array.from([0x61, 0x62, 0x63, 0x64, 0x65]);
  const sum = fletcher32(data);
  const withSum = new Uint8Array(9);
  withSum.set(data);
  new DataView(withSum.buffer).setUint32(5, sum, true);
  assert.deepEqual(stripFletcher32(withSum), data);
  // the byte-swapped variant written by HDF5 < 1.6.3 is accepted too
  const swapped = withSum.slice();
  [swapped[5], swapped[6], swapped[7], swapped[8]] = [withSum[6]!, withSum[5]!, withSum[8]!, withSum[7]!];
  assert.deepEqual(stripFletcher32(swapped), data);
  withSum[0] ^= 1;
  assert.throws(() => stripFletcher32(withSum), ChecksumError);

  const rel = "h5serv/test/test_files/h5ex_d_checksum.h5";
  const abs = corpusFile(rel);
  const doc = await indexLocalFile(abs, { url: abs });
  const key = Object.keys(doc.refs).find((k) => Array.isArray(doc.refs[k]))!;
  const ds = key.slice(0, key.lastIndexOf("/"));
  assert.ok(JSON.stringify(doc.refs[`${ds}/.zarray`]).includes("fletcher32"));
  const good = await readSlice(doc, ds, "", { rangeReader: fileRangeReader(), cache: null });
  assert.ok((good.data as { length: number }).length > 0);
  const flip: RangeReader = async (url, offset, length) => {
    const b = await fileRangeReader()(url, offset, length);
    b[0] ^= 0xff;
    return b;
  };
  await assert.rejects(
    readSlice(doc, ds, "", { rangeReader: flip, cache: null, decodedCache: null }),
    (e) => e instanceof ChunkDecodeError && e.cause instanceof ChecksumError && /fletcher32 checksum mismatch/.test(e.message),
  );
});

test("zlib codec: a numeric chunk inflates into one buffer of its size; other sizes and dtypes still decode whole", async () => {
  const values = Float32Array.from({ length: 4096 }, (_, i) => Math.sin(i / 50));
  const raw = new Uint8Array(values.buffer);
  const packed = deflateSync(raw);
  const sized = ZlibCodec.fromConfig({}, { shape: [4096], dataType: "float32" });
  const out = await sized.decode(packed);
  assert.deepEqual(out, raw);
  assert.ok(out.buffer.byteLength <= raw.byteLength + 64, `inflated into a ${out.buffer.byteLength}-byte buffer`);
  // more output than the chunk (a filter after zlib added bytes), a big chunk (async path), no metadata, objects
  const longer = new Uint8Array(raw.byteLength + 1000).fill(7);
  assert.deepEqual(await sized.decode(deflateSync(longer)), longer);
  const big = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251);
  assert.deepEqual(await ZlibCodec.fromConfig({}, { shape: [big.length], dataType: "uint8" }).decode(deflateSync(big)), big);
  assert.deepEqual(await ZlibCodec.fromConfig({}).decode(packed), raw);
  assert.deepEqual(await ZlibCodec.fromConfig({}, { shape: [3], dataType: "v2:object" as never }).decode(packed), raw);
  await assert.rejects(sized.decode(raw.subarray(0, 100)), /header check|compression method|invalid/i);
});

test("codecs: json2 flattens N-D chunks, broadcasts one item, checks counts; chunk size check", async () => {
  registerLindiCodecs();
  assert.ok(zarr.registry.has("numcodecs.fletcher32") && zarr.registry.has("numcodecs.lzf"));
  const c = new Json2Codec([2, 2]);
  const nd = c.decode(encodeJson2([["a", "b"], ["c", new PyFloat(NaN)]], [2, 2]));
  assert.deepEqual(nd.data.slice(0, 3), ["a", "b", "c"]);
  assert.ok(Number.isNaN(nd.data[3]));
  assert.deepEqual(nd.stride, [2, 1]);
  assert.deepEqual(new Json2Codec([3]).decode(encodeJson2(["x"], [3])).data, ["x", "x", "x"]);
  assert.throws(() => new Json2Codec([3]).decode(encodeJson2(["x", "y"], [2])), ChunkSizeError);
  // rows of compound data stay lists inside a 1-D chunk
  assert.deepEqual(new Json2Codec([1]).decode(encodeJson2([[1, "s"]], [1])).data, [[1, "s"]]);
  // a stored chunk of the wrong size is an error, not garbage
  const refs: Record<string, PyJson> = { "a/.zarray": zarray({ shape: [4], dtype: "<i4" }), "a/0": "base64:" + Buffer.from(new Uint8Array(12)).toString("base64") };
  await assert.rejects(readSlice({ refs }, "a", ""), (e) => e instanceof ChunkDecodeError && e.cause instanceof ChunkSizeError && /expected 16/.test(e.message));
});

test("locateChunk: inline, range, never written (with fill value), invalid keys, external links", async () => {
  const refs: Record<string, PyJson> = {
    "a/.zarray": zarray({ shape: [10, 3], chunks: [4, 3], fill_value: "NaN", dtype: "<f4" }),
    "a/0.0": "base64:AAAA",
    "a/1.0": ["{{u1}}", 100, 48],
    s: "x",
  };
  const doc = { refs, templates: { u1: "https://h/f.h5" } };
  const inline = await locateChunk(doc, "/a", "0.0");
  assert.deepEqual(inline.location, { kind: "inline", bytes: Uint8Array.from([0, 0, 0]) });
  assert.equal(inline.dtype, "<f4");
  assert.deepEqual(inline.chunks, [4, 3]);
  const range = await locateChunk(doc, "a", "1.0");
  assert.deepEqual(range.location, { kind: "range", url: "https://h/f.h5", offset: 100, length: 48 });
  assert.equal(range.filters, null);
  await assert.rejects(locateChunk(doc, "a", "2.0"), (e) => e instanceof ChunkNotFoundError && e.fillValue === "NaN" && e.key === "2.0");
  for (const k of ["3.0", "0", "0.0.0", "a.b", "-1.0", "0.1", ""]) await assert.rejects(locateChunk(doc, "a", k), InvalidChunkKeyError, k);
  assert.deepEqual(parseChunkKey("0", 0), [0]);

  const rel = "synthetic/chunk_index_latest.h5";
  const abs = corpusFile(rel);
  const ext = await indexLocalFile(abs, { url: abs, chunksThreshold: 0 });
  // a 1-D external dataset
  const link = Object.keys(ext.refs).find(
    (k) =>
      k.endsWith("/.zattrs") &&
      JSON.stringify(ext.refs[k]).includes("_EXTERNAL_ARRAY_LINK") &&
      ((ext.refs[k.replace(/\.zattrs$/, ".zarray")] as Record<string, PyJson>)["shape"] as number[]).length === 1,
  )!;
  assert.ok(link);
  const p = link.slice(0, -"/.zattrs".length);
  const externalCache = new ExternalDatasetCache();
  const c = await locateChunk(ext, p, "5", { openSource: sourceOpener({ localFiles: true }), externalCache });
  assert.equal(c.location.kind, "range");
  // the located bytes are the HDF5 chunk: undoing the advertised filters gives that chunk's values
  const n = c.chunks[0]!;
  const part = await readSlice(ext, p, `${5 * n}:${6 * n}`, { openSource: sourceOpener({ localFiles: true }), externalCache });
  assert.ok(c.location.kind === "range");
  let bytes = await fileRangeReader()(c.location.url, c.location.offset, c.location.length);
  for (const f of [...(c.filters ?? [])].reverse() as Record<string, PyJson>[]) {
    if (f["id"] === "zlib") bytes = new Uint8Array(inflateSync(bytes));
    else if (f["id"] === "shuffle") bytes = unshuffle(bytes, f["elementsize"] as number);
    else if (f["id"] === "fletcher32") bytes = stripFletcher32(bytes);
    else assert.fail(`filter ${String(f["id"])}`);
  }
  const d = part.data as Float32Array;
  assert.deepEqual(bytes, new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  externalCache.clear();
});

test("HDF5 path resolver: equals h5wasm's object addresses; links followed; missing and external refused", async () => {
  for (const rel of ["synthetic/groups.h5", "synthetic/groups_latest.h5", "synthetic/superblock_v0.h5", "generated-nwb/ecephys.nwb", "synthetic/links.h5", "synthetic/offsets4.h5"]) {
    const abs = corpusFile(rel);
    const expected = await withH5File(abs, (f, M) => listDatasetPaths(f, M).map((p) => [p, objectAddress(f, M, p)] as const));
    const src = await FileByteSource.open(abs);
    try {
      const reader = await Hdf5LayoutReader.open(src);
      for (const [p, a] of expected) assert.equal(await resolveHdf5Path(reader, p), a, `${rel} ${p}`);
      if (rel === "synthetic/links.h5") {
        const data = await resolveHdf5Path(reader, "/real/data");
        assert.equal(await resolveHdf5Path(reader, "soft_abs"), data);
        assert.equal(await resolveHdf5Path(reader, "/soft_to_group/data"), data);
        assert.equal(await resolveHdf5Path(reader, "/soft_to_root/real/data"), data);
        assert.equal(await resolveHdf5Path(reader, "/hard_alias"), data);
        await assert.rejects(resolveHdf5Path(reader, "/dangling_soft"), Hdf5PathError);
        await assert.rejects(resolveHdf5Path(reader, "/real/nope"), (e) => e instanceof Hdf5PathError && e.path === "/real/nope");
        await assert.rejects(resolveHdf5Path(reader, "/ext_dataset"), (e) => e instanceof Hdf5PathError && /external link/.test(e.message));
      }
    } finally {
      await src.close();
    }
  }
});

test("normalizeKey: no leading, trailing or doubled slashes (the fast path agrees with split/filter/join)", () => {
  const slow = (key: string) =>
    key
      .split("/")
      .filter((p) => p !== "")
      .join("/");
  for (const k of ["", "/", "//", "a", "/a", "a/", "/a/b/0.1", "a/b/0.1", "a//b", "//a", "a/b/", "/a//b/", "x/.zarray", "///x///y///"]) {
    assert.equal(normalizeKey(k), slow(k), JSON.stringify(k));
  }
});
