import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { HttpClient } from "../src/hdf5/httpByteSource.ts";
import { decodeBlosc, BLOSC_DEFAULT_CONFIG } from "../src/lindi/codecs/blosc.ts";
import { decodeJson2, JSON2_FILTER_CONFIG } from "../src/lindi/codecs/json2.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import type { LindiDocument } from "../src/lindi/generate.ts";
import { PyFloat, stringifyPython, type PyJson } from "../src/lindi/pythonJson.ts";
import { openLindiFile, type LindiFile, type LindiDoc } from "../src/lindi/lindiFile.ts";
import { AmendError, createAmendedLindi, createAmendedTar, openAmended, parseDtype } from "../src/lindi/amend.ts";
import { LindiTarReader } from "../src/lindi/tar/lindiTar.ts";
import { scanTar } from "../src/lindi/tar/ustar.ts";
import { MemoryByteSource } from "../src/hdf5/byteSource.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { corpusDir, CORPUS_MISSING } from "./support/corpus.ts";

const tmp = mkdtempSync(path.join(tmpdir(), "lindi-amend-test-"));
after(() => rmSync(tmp, { recursive: true, force: true }));

const ECEPHYS = "generated-nwb/ecephys.nwb";

/** All values of a (non-object) dataset as C-order bytes, decoding Blosc chunks; edge padding cut off. */
async function readNumeric(f: LindiFile, p: string): Promise<{ bytes: Uint8Array; shape: number[]; dtype: string }> {
  const za = f.getJson(`${p}/.zarray`) as { shape: number[]; chunks: number[]; dtype: string; compressor: PyJson; filters: PyJson };
  assert.ok(za, `${p}/.zarray`);
  assert.equal(za.filters, null);
  const itemsize = Number(/\d+$/.exec(za.dtype)![0]);
  const { shape, chunks } = za;
  const nd = shape.length;
  const out = new Uint8Array(shape.reduce((a, b) => a * b, 1) * itemsize);
  const grid = shape.map((d, i) => Math.ceil(d / chunks[i]!));
  const total = grid.reduce((a, b) => a * b, 1);
  for (let c = 0; c < total; c++) {
    const idx: number[] = [];
    let rem = c;
    for (let d = nd - 1; d >= 0; d--) {
      idx[d] = rem % grid[d]!;
      rem = Math.floor(rem / grid[d]!);
    }
    const enc = await f.getBytes(`${p}/${idx.join(".")}`);
    assert.ok(enc, `chunk ${idx.join(".")}`);
    const chunk = za.compressor === null ? enc : await decodeBlosc(enc);
    assert.equal(chunk.length, chunks.reduce((a, b) => a * b, 1) * itemsize);
    // copy element by element (tests only)
    const cstride = chunks.map((_, d) => chunks.slice(d + 1).reduce((a, b) => a * b, 1));
    const sstride = shape.map((_, d) => shape.slice(d + 1).reduce((a, b) => a * b, 1));
    const n = chunks.reduce((a, b) => a * b, 1);
    for (let e = 0; e < n; e++) {
      let src = 0;
      let dst = 0;
      let inside = true;
      for (let d = 0; d < nd; d++) {
        const local = Math.floor(e / cstride[d]!) % chunks[d]!;
        const g = idx[d]! * chunks[d]! + local;
        if (g >= shape[d]!) inside = false;
        dst += g * sstride[d]!;
        src += local * cstride[d]!;
      }
      if (inside) out.set(chunk.subarray(src * itemsize, (src + 1) * itemsize), dst * itemsize);
    }
  }
  return { bytes: out, shape, dtype: za.dtype };
}

function f64(b: Uint8Array): Float64Array {
  return new Float64Array(b.slice().buffer);
}

describe("amending a remote NWB file (ecephys.nwb via a loopback origin)", { skip: !existsSync(corpusDir) && CORPUS_MISSING }, () => {
  let origin: RangeOrigin;
  let outOrigin: RangeOrigin;
  let client: HttpClient;
  let base: LindiDocument;
  const outDir = path.join(tmp, "out");
  const tarPath = path.join(outDir, "ecephys.lindi.tar");
  const values = new Float32Array(5000 * 4).map((_, i) => Math.sin(i / 7) * 1000 + (i % 13));
  const small = new Int16Array([1, -2, 3, -4, 5, 6, 7, 8, 9, 10]);

  before(async () => {
    mkdirSync(outDir);
    origin = await startRangeOrigin({ root: corpusDir });
    outOrigin = await startRangeOrigin({ root: outDir });
    client = new HttpClient({ retries: 0 });
    base = await indexLocalFile(path.join(corpusDir, ECEPHYS), { url: origin.url(ECEPHYS) });
    assert.ok(base.templates?.u1 === origin.url(ECEPHYS), "the base refs point at the origin");

    const a = await createAmendedTar(base, tarPath);
    await a.addGroup("processing/amended", { description: "added without copying the NWB file" });
    await a.addDataset("processing/amended/values", { shape: [5000, 4], data: values, chunks: [1000, 4], attrs: { unit: "uV", conversion: 1.0 } });
    await a.addDataset("processing/amended/small", { shape: [10], data: small });
    await a.addDataset("processing/amended/scalar", { shape: [], data: [2.5], dtype: "float64" });
    await a.addDataset("processing/amended/labels", { shape: [3], data: ["alpha", "béta", ""] });
    await a.addDataset("processing/amended/flags", { shape: [2, 3], data: [true, false, true, false, false, true] });
    await a.setAttrs("", { amended: true, rate: NaN });
    await a.setAttrs("acquisition/ElectricalSeries", { note: "checked" });
    await a.close();
  });
  after(async () => {
    await client.close();
    await origin.close();
    await outOrigin.close();
  });

  test(".zarray of a new dataset is zarr's default Blosc array (spec 4.2, 13)", async () => {
    const f = await openLindiFile(tarPath);
    try {
      assert.deepEqual(f.doc.refs["processing/amended/values/.zarray"], {
        chunks: [1000, 4],
        compressor: { blocksize: 0, clevel: 5, cname: "lz4", id: "blosc", shuffle: 1 },
        dtype: "<f4",
        fill_value: new PyFloat(0),
        filters: null,
        order: "C",
        shape: [5000, 4],
        zarr_format: 2,
      });
      assert.deepEqual(f.doc.refs["processing/amended/values/.zarray"]!, {
        ...(f.doc.refs["processing/amended/values/.zarray"] as object),
        compressor: { ...BLOSC_DEFAULT_CONFIG },
      });
      assert.deepEqual(f.doc.refs["processing/amended/.zgroup"], { zarr_format: 2 });
      assert.deepEqual(f.doc.refs["processing/amended/.zattrs"], { description: "added without copying the NWB file" });
      assert.deepEqual(f.doc.refs["processing/amended/scalar/.zattrs"], { _SCALAR: true });
      assert.deepEqual((f.doc.refs[".zattrs"] as Record<string, PyJson>).rate, "NaN");
      assert.equal((f.doc.refs[".zattrs"] as Record<string, PyJson>).amended, true);
      // the serialized lindi.json is exactly the Python-style dump of the document
      assert.equal(await f.tar!.readLindiJsonText(), stringifyPython(f.doc as unknown as PyJson));
    } finally {
      await f.close();
    }
  });

  test("large chunks are blobs (./blobs/<key>), small ones inline (spec 10.5)", async () => {
    const f = await openLindiFile(tarPath);
    try {
      for (let i = 0; i < 5; i++) {
        const key = `processing/amended/values/${i}.0`;
        const ref = f.doc.refs[key] as [string, number, number];
        assert.ok(Array.isArray(ref), key);
        assert.equal(ref[0], `./blobs/${key}`);
        assert.equal(ref[1], 0);
        assert.ok(ref[2] >= 1000);
        assert.equal(f.tar!.member(`blobs/${key}`)!.s, ref[2]);
      }
      assert.equal(typeof f.doc.refs["processing/amended/small/0"], "string");
      assert.equal(typeof f.doc.refs["processing/amended/scalar/0"], "string");
    } finally {
      await f.close();
    }
  });

  test("new dataset values read back (local tar)", async () => {
    const f = await openLindiFile(tarPath);
    try {
      const v = await readNumeric(f, "processing/amended/values");
      assert.deepEqual(new Float32Array(v.bytes.slice().buffer), values);
      const s = await readNumeric(f, "processing/amended/small");
      assert.deepEqual(new Int16Array(s.bytes.slice().buffer), small);
      assert.deepEqual(f64((await readNumeric(f, "processing/amended/scalar")).bytes), new Float64Array([2.5]));
      const b = await readNumeric(f, "processing/amended/flags");
      assert.equal(b.dtype, "|b1");
      assert.deepEqual([...b.bytes], [1, 0, 1, 0, 0, 1]);
      // |O strings: json2 filter + Blosc
      const za = f.getJson("processing/amended/labels/.zarray") as Record<string, PyJson>;
      assert.equal(za.dtype, "|O");
      assert.deepEqual(za.filters, [JSON2_FILTER_CONFIG]);
      assert.equal(za.fill_value, 0);
      const dec = decodeJson2(await decodeBlosc((await f.getBytes("processing/amended/labels/0"))!));
      assert.deepEqual(dec.items, ["alpha", "béta", ""]);
      assert.deepEqual(dec.shape, [3]);
    } finally {
      await f.close();
    }
  });

  test("the base document is untouched: same refs, templates, remote URLs", async () => {
    const f = await openLindiFile(tarPath);
    try {
      assert.deepEqual(f.doc.templates, base.templates);
      assert.equal(f.doc.version, 1);
      for (const [k, v] of Object.entries(base.refs)) {
        if (k === ".zattrs" || k === "acquisition/ElectricalSeries/.zattrs") continue;
        assert.equal(stringifyPython(f.doc.refs[k]!), stringifyPython(v), k);
      }
      const es = f.doc.refs["acquisition/ElectricalSeries/.zattrs"] as Record<string, PyJson>;
      assert.equal(es.note, "checked");
      assert.deepEqual({ ...es, note: undefined }, { ...(base.refs["acquisition/ElectricalSeries/.zattrs"] as object), note: undefined });
      // no blob of the base: only the new datasets live in the tar
      const blobs = f.tar!.index.files.filter((m) => m.n.startsWith("blobs/")).map((m) => m.n);
      assert.ok(blobs.length >= 5 && blobs.every((n) => n.startsWith("blobs/processing/amended/")), blobs.join(","));
      const blobBytes = f.tar!.index.files.filter((m) => m.n.startsWith("blobs/")).reduce((n, m) => n + m.s, 0);
      const nwbSize = readFileSync(path.join(corpusDir, ECEPHYS)).length;
      assert.ok(blobBytes < 100_000 && nwbSize > 2_000_000, `the NWB data was not copied (${blobBytes} blob bytes)`);
    } finally {
      await f.close();
    }
  });

  test("original remote refs still resolve to the origin and read the NWB bytes", async () => {
    const f = await openLindiFile(tarPath, { httpClient: client });
    const nwb = readFileSync(path.join(corpusDir, ECEPHYS));
    try {
      const key = "acquisition/ElectricalSeries/data/0.0";
      const ref = f.doc.refs[key] as [string, number, number];
      assert.equal(ref[0], "{{u1}}");
      const loc = f.resolveRef(ref);
      assert.deepEqual(loc, { kind: "http", url: origin.url(ECEPHYS), offset: ref[1], length: ref[2] });
      origin.resetStats();
      const got = await f.getBytes(key);
      assert.deepEqual(got, new Uint8Array(nwb.subarray(ref[1], ref[1] + ref[2])));
      assert.ok(origin.log.some((e) => e.range === `bytes=${ref[1]}-${ref[1] + ref[2] - 1}`));
    } finally {
      await f.close();
    }
  });

  test("the amended tar served remotely: few requests, new and original data readable", async () => {
    origin.resetStats();
    outOrigin.resetStats();
    const f = await openLindiFile(outOrigin.url("ecephys.lindi.tar"), { httpClient: client });
    try {
      assert.equal(f.container, "tar");
      assert.equal(outOrigin.stats.requests, 5, "HEAD + 0–511 + entry + index + lindi.json");
      const v = await readNumeric(f, "processing/amended/values");
      assert.deepEqual(new Float32Array(v.bytes.slice().buffer), values);
      const ref = f.doc.refs["acquisition/ElectricalSeries/data/0.0"] as [string, number, number];
      const nwb = readFileSync(path.join(corpusDir, ECEPHYS));
      assert.deepEqual(await f.readRef(ref), new Uint8Array(nwb.subarray(ref[1], ref[1] + ref[2])));
      assert.equal(origin.stats.gets, 1);
      // exporting rewrites the blob refs to absolute ranges of the tar (spec 10.5)
      const portable = f.portableDoc();
      const blobRef = portable.refs["processing/amended/values/0.0"] as [string, number, number];
      assert.equal(blobRef[0], outOrigin.url("ecephys.lindi.tar"));
      assert.equal(blobRef[1], f.tar!.member("blobs/processing/amended/values/0.0")!.d);
    } finally {
      await f.close();
    }
  });

  test("the system tar accepts the amended archive", { skip: spawnSync("tar", ["--version"]).status !== 0 && "tar not available" }, () => {
    const r = spawnSync("tar", ["tvf", tarPath], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /blobs\/processing\/amended\/values\/4\.0/);
  });

  test("a .lindi.d gets the same content (spec 11)", async () => {
    const dir = path.join(tmp, "ecephys.lindi.d");
    const a = await createAmendedLindi(base, dir);
    assert.equal(a.container, "dir");
    await a.addDataset("processing/amended/values", { shape: [5000, 4], data: values, chunks: [1000, 4] });
    await a.close();
    assert.ok(existsSync(path.join(dir, "blobs/processing/amended/values/3.0")));
    const f = await openLindiFile(dir);
    try {
      assert.equal(f.container, "dir");
      assert.equal(readFileSync(path.join(dir, "lindi.json"), "utf8"), stringifyPython(f.doc as unknown as PyJson));
      const v = await readNumeric(f, "processing/amended/values");
      assert.deepEqual(new Float32Array(v.bytes.slice().buffer), values);
    } finally {
      await f.close();
    }
  });
});

describe("amend: editing rules", () => {
  const remoteDoc = (): LindiDoc => ({
    refs: {
      ".zgroup": { zarr_format: 2 },
      "a/.zgroup": { zarr_format: 2 },
      "a/d/.zarray": { chunks: [4], compressor: null, dtype: "<i4", fill_value: 0, filters: null, order: "C", shape: [4], zarr_format: 2 },
      "a/d/0": ["https://example.org/f.nwb", 100, 16],
    },
    version: 1,
  });

  test("overwrite and remove trash the old blobs; lindi.json growth trashes + appends", async () => {
    const p = path.join(tmp, "edit.lindi.tar");
    const a = await createAmendedTar(remoteDoc(), p);
    const big = new Float64Array(2000).map((_, i) => Math.cos(i) * i);
    await a.addDataset("a/x", { shape: [2000], data: big, chunks: [500] });
    await assert.rejects(a.addDataset("a/x", { shape: [1], data: [1] }), /already exists/);
    await a.addDataset("a/x", { shape: [2000], data: big.map((v) => -v), chunks: [1000], overwrite: true });
    assert.equal(a.doc.refs["a/x/2"], undefined, "old chunk keys gone");
    for (let i = 0; i < 60; i++) await a.addDataset(`many/d${i}`, { shape: [3], data: new Int32Array([i, i + 1, i + 2]), attrs: { index: i } });
    await a.remove("many/d0");
    await a.close();

    const b = new Uint8Array(readFileSync(p));
    const r = await LindiTarReader.open(new MemoryByteSource(b));
    const scan = await scanTar(async (o, l) => b.subarray(o, o + l), b.length);
    const trash = scan.members.filter((m) => m.name.startsWith(".trash/")).map((m) => m.name.replace(/\.[a-z]{10}$/, ""));
    assert.deepEqual(trash.filter((n) => n.startsWith(".trash/blobs/")).sort(), [0, 1, 2, 3].map((i) => `.trash/blobs/a/x/${i}`));
    assert.ok(trash.includes(".trash/lindi.json"), "lindi.json outgrew 8192 bytes and moved");
    assert.equal(r.has("blobs/a/x/0.v2"), true, "the new blob got a version name");
    assert.equal(r.has("blobs/a/x/0"), false, "the old one is trash");

    const f = await openLindiFile(p);
    try {
      assert.deepEqual(f64((await readNumeric(f, "a/x")).bytes), big.map((v) => -v));
      assert.equal(f.doc.refs["many/d0/.zarray"], undefined);
      assert.deepEqual(new Int32Array((await readNumeric(f, "many/d59")).bytes.slice().buffer), new Int32Array([59, 60, 61]));
      assert.deepEqual(f.doc.refs["a/d/0"], ["https://example.org/f.nwb", 100, 16]);
      assert.deepEqual(f.doc.refs["many/.zgroup"], { zarr_format: 2 }, "intermediate group created");
    } finally {
      await f.close();
    }

    // reopen and keep amending
    const a2 = await openAmended(p);
    await a2.addDataset("later/v", { shape: [2, 2], data: new Uint8Array([1, 2, 3, 4]) });
    await a2.setAttrs("a/d", { added: [1, 2, 3] });
    await a2.close();
    const f2 = await openLindiFile(p);
    assert.deepEqual([...(await readNumeric(f2, "later/v")).bytes], [1, 2, 3, 4]);
    assert.deepEqual(f2.doc.refs["a/d/.zattrs"], { added: [1, 2, 3] });
    await f2.close();
  });

  test(".lindi.d: overwritten blobs get a new version name, the old file is deleted", async () => {
    const dir = path.join(tmp, "edit.lindi.d");
    const a = await createAmendedLindi(remoteDoc(), dir);
    const big = new Float64Array(1000).map((_, i) => Math.sqrt(i) * 1e6 + Math.sin(i));
    await a.addDataset("a/x", { shape: [1000], data: big });
    assert.deepEqual((a.doc.refs["a/x/0"] as PyJson[]).slice(0, 2), ["./blobs/a/x/0", 0]);
    await a.addDataset("a/x", { shape: [1000], data: big.map((v) => v + 1), overwrite: true });
    assert.deepEqual((a.doc.refs["a/x/0"] as PyJson[]).slice(0, 2), ["./blobs/a/x/0.v2", 0]);
    await a.close();
    assert.equal(existsSync(path.join(dir, "blobs/a/x/0")), false);
    const f = await openLindiFile(dir);
    assert.deepEqual(f64((await readNumeric(f, "a/x")).bytes), big.map((v) => v + 1));
    await f.close();
  });

  test("invalid requests change nothing", async () => {
    const p = path.join(tmp, "invalid.lindi.tar");
    const a = await createAmendedTar(remoteDoc(), p);
    const before = stringifyPython(a.doc as unknown as PyJson);
    await assert.rejects(a.addDataset("a/y", { shape: [3], data: [1, 2] }), /2 elements/);
    await assert.rejects(a.addDataset("a/d/sub", { shape: [1], data: [1] }), /is a dataset/);
    await assert.rejects(a.addDataset("a/y", { shape: [2], data: [1, 300], dtype: "uint8" }), /out of range/);
    await assert.rejects(a.addDataset("a/y", { shape: [2], data: [1, 2], dtype: "complex64" }), /unsupported dtype/);
    await assert.rejects(a.addDataset("a/y", { shape: [2], data: [1, 2], chunks: [0] }), /invalid chunks/);
    await assert.rejects(a.addDataset("../y", { shape: [1], data: [1] }), /invalid path/);
    await assert.rejects(a.setAttrs("nope", { x: 1 }), /no group or dataset/);
    assert.equal(stringifyPython(a.doc as unknown as PyJson), before);
    await a.close();
    await assert.rejects(
      createAmendedTar({ refs: { "x/0": ["./blobs/x/0", 0, 10] } }, path.join(tmp, "rel.lindi.tar")),
      (e: unknown) => e instanceof AmendError && /relative/.test(e.message),
    );
  });

  test("dtypes: names, byte order, big-endian data", async () => {
    assert.equal(parseDtype("float32").str, "<f4");
    assert.equal(parseDtype("int8").str, "|i1");
    assert.equal(parseDtype(">i4").str, ">i4");
    assert.equal(parseDtype("bool").str, "|b1");
    assert.equal(parseDtype("S5").str, "|S5");
    assert.equal(parseDtype("str").str, "|O");
    const p = path.join(tmp, "dtypes.lindi.tar");
    const a = await createAmendedTar(remoteDoc(), p);
    await a.addDataset("be", { shape: [2], data: [1, 258], dtype: ">i4" });
    await a.addDataset("u64", { shape: [1], data: [18446744073709551615n], dtype: "<u8" });
    await a.addDataset("fixed", { shape: [2], data: ["ab", "c"], dtype: "S3" });
    await a.close();
    const f = await openLindiFile(p);
    assert.deepEqual([...(await readNumeric(f, "be")).bytes], [0, 0, 0, 1, 0, 0, 1, 2]);
    assert.deepEqual(new BigUint64Array((await readNumeric(f, "u64")).bytes.slice().buffer), new BigUint64Array([18446744073709551615n]));
    assert.equal((f.doc.refs["fixed/.zarray"] as Record<string, PyJson>).fill_value, "");
    assert.deepEqual([...(await readNumeric(f, "fixed")).bytes], [0x61, 0x62, 0, 0x63, 0, 0]);
    await f.close();
  });
});
