/**
 * GET /slice end to end: a real server on 127.0.0.1 (real index builder) and
 * the loopback range origin serving the corpus. For every dataset of a sample
 * of corpus files (every generated-nwb file — those LINDI cannot express must
 * answer 422 —, a handful of pynwb NWB files, synthetic files and files with
 * unusual dtypes), the full read and two seeded random selections are asked in
 * json, bin and npy and compared with h5wasm reading the same local file:
 *
 *   bin  → rebuilt as a SliceResult from X-Dtype / X-Shape and compared with
 *          compareWithH5 (exact bytes for numbers, strings, …);
 *   npy  → header parsed here (magic, version, descr, shape); the data must
 *          equal the bin body;
 *   json → values equal the bin values (NaN as "NaN", big integers as
 *          strings, float32/float16 shortest text); object dtypes (406 for
 *          bin/npy) are compared with h5wasm directly.
 *
 * Plus dtype=safe, and the error answers of /slice (all JSON).
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ServiceConfig } from "../src/config.ts";
import { halfToNumber } from "../src/hdf5/values.ts";
import { buildServer } from "../src/server.ts";
import { numberToHalf } from "../src/slices/codecs.ts";
import type { SliceResult } from "../src/slices/readSlice.ts";
import { parseSelection } from "../src/slices/selection.ts";
import { corpusFile, listDatasetPaths, requireCorpus, withH5File } from "./support/corpus.ts";
import type { RangeOrigin } from "./support/rangeOrigin.ts";
import { compareWithH5, randomSelection, seededRandom } from "./support/sliceCompare.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { testConfig as serviceTestConfig, call } from "./support/service.ts";

const PYNWB = [
  "pynwb/tests/back_compat/1.0.2_nwbfile.nwb",
  "pynwb/tests/back_compat/2.1.0_nwbfile_with_extension.nwb",
  "pynwb/_history/5ac732173f/tests/back_compat/2.6.0_DynamicTableElectrodes.nwb",
  "pynwb/_history/bef1be8eea/tests/back_compat/1.5.1_timeintervals_non_ndtype_tsref.nwb",
];
const SYNTHETIC = ["synthetic/chunk_index_latest.h5", "synthetic/nwb_like_large_chunks.h5", "synthetic/paged.h5", "synthetic/superblock_v0.h5"];
const DTYPES = [
  "pyfive/tests/dataset_datatypes.hdf5", // big-endian integers and floats
  "jhdf/jhdf/src/test/resources/hdf5/float_special_values_earliest.hdf5", // float16, NaN, ±Inf
  "h5serv/test/test_files/dset_gzip.h5", // shuffle + zlib + fletcher32, never-written chunks
  "hdf5-1.10.8/tools/testfiles/tstr2.h5", // fixed |S
  "hdf5-1.10.8/tools/testfiles/tvldtypes3.h5", // compound with a vlen member
  "hdmf/_history/ea408da6c2/test_DynamicTable.h5",
];

/** The test service, reusing source probes for the whole file (these tests do not change sources). */
const testConfig = (cacheDir: string, over: Partial<ServiceConfig> = {}): ServiceConfig =>
  serviceTestConfig(cacheDir, { probeTtlSeconds: 30, ...over });

// ---- decoding what the service sent -------------------------------------------------

const utf8 = new TextDecoder("utf-8", { fatal: true });

function fixedStrings(bytes: Uint8Array, kind: "S" | "U", width: number): string[] {
  const size = kind === "S" ? width : 4 * width;
  const out: string[] = [];
  for (let i = 0; size > 0 && i < bytes.length / size; i++) {
    const el = bytes.subarray(i * size, (i + 1) * size);
    if (kind === "S") {
      let end = el.length;
      while (end > 0 && el[end - 1] === 0) end--;
      try {
        out.push(utf8.decode(el.subarray(0, end)));
      } catch {
        out.push(Buffer.from(el.subarray(0, end)).toString("latin1"));
      }
    } else {
      const v = new DataView(el.buffer, el.byteOffset, el.byteLength);
      let s = "";
      for (let k = 0; k + 4 <= el.length; k += 4) {
        const cp = v.getUint32(k, true);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      out.push(s);
    }
  }
  return out;
}

/** A SliceResult from raw bytes + numpy dtype (typed arrays hold native-order values). */
function fromBytes(dtype: string, shape: number[], body: Uint8Array): SliceResult {
  const m = /^([<>|])([a-zA-Z])(\d+)$/.exec(dtype);
  assert.ok(m, `dtype ${dtype}`);
  const [, order, kind, sizeText] = m;
  const size = Number(sizeText);
  if (kind === "S" || kind === "U") return { dtype, shape, data: fixedStrings(body, kind, size), bytes: new Uint8Array(body), path: "" };
  const b = new Uint8Array(body); // a copy (Buffer#slice would be a view)
  if (order === ">" && size > 1) for (let i = 0; i + size <= b.length; i += size) b.subarray(i, i + size).reverse();
  const n = b.length / size;
  const ctor: Record<string, new (buf: ArrayBufferLike, off: number, n: number) => ArrayBufferView> = {
    i1: Int8Array,
    u1: Uint8Array,
    b1: Uint8Array,
    i2: Int16Array,
    u2: Uint16Array,
    f2: Uint16Array,
    i4: Int32Array,
    u4: Uint32Array,
    f4: Float32Array,
    i8: BigInt64Array,
    u8: BigUint64Array,
    f8: Float64Array,
  };
  const C = ctor[`${kind}${size}`];
  assert.ok(C, `dtype ${dtype}`);
  return { dtype, shape, data: new C(b.buffer, 0, n) as SliceResult["data"], path: "" };
}

/** Parses a .npy file (format 1.0/2.0): descr, fortran_order, shape, data offset. */
function parseNpy(buf: Buffer): { descr: string; fortran: boolean; shape: number[]; data: Buffer } {
  assert.deepEqual([...buf.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], "npy magic");
  const major = buf[6]!;
  assert.ok(major === 1 || major === 2, `npy version ${major}`);
  const headerLen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  assert.equal((start + headerLen) % 64, 0, "npy header is 64-byte aligned");
  const text = buf.subarray(start, start + headerLen).toString("latin1");
  assert.ok(text.endsWith("\n"), "npy header ends with a newline");
  const descr = /'descr':\s*'([^']*)'/.exec(text)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(text)?.[1];
  const shape = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
  assert.ok(descr !== undefined && fortran !== undefined && shape !== undefined, `npy header ${text}`);
  return {
    descr,
    fortran: fortran === "True",
    shape: shape.split(",").map((s) => s.trim()).filter(Boolean).map(Number),
    data: buf.subarray(start + headerLen),
  };
}

function flatten(data: unknown, shape: number[]): unknown[] {
  if (shape.length === 0) return [data];
  const out: unknown[] = [];
  const rec = (v: unknown, d: number) => {
    assert.ok(Array.isArray(v), "nested lists");
    assert.equal(v.length, shape[d]);
    if (d === shape.length - 1) for (const x of v) out.push(x);
    else for (const x of v) rec(x, d + 1);
  };
  rec(data, 0);
  return out;
}

function specialNumber(v: unknown): number {
  if (v === "NaN") return NaN;
  if (v === "Infinity") return Infinity;
  if (v === "-Infinity") return -Infinity;
  assert.equal(typeof v, "number", `number expected, got ${JSON.stringify(v)}`);
  return v as number;
}

/** First mismatch between json values and the (verified) bin values, or null. */
function jsonVsBin(values: unknown[], bin: SliceResult): string | null {
  const kind = bin.dtype.slice(1, 2);
  const size = Number(bin.dtype.slice(2));
  const d = bin.data as ArrayLike<unknown>;
  if (values.length !== d.length) return `${values.length} json values, ${d.length} bin values`;
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const b = d[i];
    let ok: boolean;
    if (kind === "f") {
      const x = specialNumber(v);
      if (size === 2) ok = Number.isNaN(x) ? Number.isNaN(halfToNumber(b as number)) : numberToHalf(x) === b;
      else if (size === 4) ok = Number.isNaN(x) ? Number.isNaN(b as number) : Object.is(Math.fround(x), b);
      else ok = Number.isNaN(x) ? Number.isNaN(b as number) : Object.is(x, b);
    } else if ((kind === "i" || kind === "u") && size === 8) {
      ok = (typeof v === "number" || typeof v === "string") && BigInt(v) === b;
      if (typeof v === "number" && !Number.isSafeInteger(v)) ok = false; // big values must come as strings
    } else if (kind === "b") ok = v === (b === 1);
    else ok = v === b;
    if (!ok) return `element ${i}: json ${JSON.stringify(v)} vs bin ${String(b)}`;
  }
  return null;
}

// ---- the service --------------------------------------------------------------------

let origin: RangeOrigin;
let base: string;
let service: CorpusService;

before(async () => {
  service = await startCorpusService("lindi-data-test-", testConfig);
  ({ origin, base } = service);
});

after(() => service.close());

const slice = (rel: string, p: string, extra: string) => `/slice?url=${encodeURIComponent(origin.url(rel))}&path=${encodeURIComponent(p)}${extra}`;

interface Tally {
  files: number;
  datasets: number;
  selections: number;
  objectSelections: number;
  unsupported: number;
  problems: string[];
}

/** Every dataset of `rel`: full read + 2 seeded random selections, in json, bin and npy. */
async function checkFile(rel: string, tally: Tally): Promise<"ok" | "not convertible"> {
  // the index first: files LINDI cannot express answer 422 (JSON) on every data route
  const first = await call(base, `/meta?url=${encodeURIComponent(origin.url(rel))}`);
  if (first.status === 422) {
    assert.match(String(first.headers["content-type"]), /^application\/json/);
    const e = first.json<{ statusCode: number; message: string }>();
    assert.equal(e.statusCode, 422);
    assert.ok(e.message.length > 0);
    return "not convertible";
  }
  assert.equal(first.status, 200, `${rel}: ${first.body.toString()}`);
  tally.files++;
  await withH5File(corpusFile(rel), async (f, M) => {
    const rnd = seededRandom(42);
    for (const p of listDatasetPaths(f, M)) {
      tally.datasets++;
      const shape = (M.get_dataset_metadata(f.file_id, p).shape ?? []) as number[];
      for (const text of ["", randomSelection(shape, rnd), randomSelection(shape, rnd)]) {
        const where = `${rel} ${p} [${text}]`;
        const q = `&select=${encodeURIComponent(text)}`;
        const [bin, npy, json] = await Promise.all([call(base, slice(rel, p, `${q}&format=bin`)), call(base, slice(rel, p, `${q}&format=npy`)), call(base, slice(rel, p, q))]);
        if (json.status === 422 && bin.status === 422) {
          tally.unsupported++; // a dtype the slice reader refuses (stated in the message)
          assert.match(json.json<{ message: string }>().message, /dtype/, where);
          break;
        }
        assert.equal(json.status, 200, `${where} json: ${json.body.toString().slice(0, 300)}`);
        assert.equal(json.headers["content-type"], "application/json");
        const j = json.json<{ dtype: string; shape: number[]; data: unknown; fields?: { name: string; dtype: string }[] }>();
        const sel = parseSelection(text, shape);
        tally.selections++;
        if (bin.status === 406) {
          // variable-size elements: only json; npy refuses too
          assert.equal(npy.status, 406, where);
          assert.equal(bin.json<{ statusCode: number }>().statusCode, 406);
          assert.ok(j.dtype === "|O" || j.fields !== undefined || /^\[/.test(j.dtype), `${where}: 406 for dtype ${j.dtype}`);
          tally.objectSelections++;
          const res: SliceResult = { dtype: j.dtype, shape: j.shape, data: flatten(j.data, j.shape), path: p, ...(j.fields ? { fields: j.fields } : {}) };
          const probs = compareWithH5(f, M, p, res, sel);
          if (probs.length) tally.problems.push(`${where} json: ${probs.slice(0, 3).join("; ")}`);
          continue;
        }
        assert.equal(bin.status, 200, `${where} bin: ${bin.body.toString().slice(0, 300)}`);
        assert.equal(bin.headers["content-type"], "application/octet-stream");
        const dtype = bin.headers["x-dtype"]!;
        const binShape = bin.headers["x-shape"] === "" ? [] : bin.headers["x-shape"]!.split(",").map(Number);
        assert.deepEqual(binShape, sel.shape, where);
        const fromBin = fromBytes(dtype, binShape, bin.body);
        const probs = compareWithH5(f, M, p, fromBin, sel);
        if (probs.length) {
          tally.problems.push(`${where} bin (${dtype}): ${probs.slice(0, 3).join("; ")}`);
          continue;
        }
        // npy: same bytes behind a valid header
        assert.equal(npy.status, 200, where);
        assert.equal(npy.headers["content-type"], "application/octet-stream");
        assert.match(npy.headers["content-disposition"] ?? "", /\.npy"$/);
        const n = parseNpy(npy.body);
        assert.equal(n.descr, dtype, where);
        assert.equal(n.fortran, false);
        assert.deepEqual(n.shape, sel.shape, where);
        assert.ok(n.data.equals(bin.body), `${where}: npy data ≠ bin body: ${n.data.toString("hex").slice(0, 80)} vs ${bin.body.toString("hex").slice(0, 80)}`);
        // json: same values
        assert.equal(j.dtype, dtype, where);
        assert.deepEqual(j.shape, sel.shape, where);
        const mismatch = jsonVsBin(flatten(j.data, j.shape), fromBin);
        if (mismatch) tally.problems.push(`${where} json: ${mismatch}`);
      }
    }
  });
  return "ok";
}

describe("GET /slice equals h5wasm", () => {
  test("every dataset of the sample: full reads and random selections, json / bin / npy", { timeout: 150_000 }, async (t) => {
    const generated = readdirSync(path.join(requireCorpus(), "generated-nwb"))
      .filter((n) => n.endsWith(".nwb"))
      .sort()
      .map((n) => `generated-nwb/${n}`);
    assert.ok(generated.length >= 5);
    const tally: Tally = { files: 0, datasets: 0, selections: 0, objectSelections: 0, unsupported: 0, problems: [] };
    const notConvertible: string[] = [];
    for (const rel of [...generated, ...PYNWB, ...SYNTHETIC, ...DTYPES]) {
      if ((await checkFile(rel, tally)) === "not convertible") notConvertible.push(rel);
    }
    t.diagnostic(
      `${tally.files} files, ${tally.datasets} datasets, ${tally.selections} selections (${tally.objectSelections} json-only), ` +
        `${tally.unsupported} unsupported dtypes; not convertible: ${notConvertible.join(", ")}`,
    );
    assert.deepEqual(tally.problems, []);
    // generated-nwb files LINDI cannot express (bitshuffle, lzf, external links) answered 422; the others were compared
    assert.ok(notConvertible.every((r) => r.startsWith("generated-nwb/")), `not convertible: ${notConvertible.join(", ")}`);
    assert.ok(generated.length - notConvertible.length >= 2, "some generated-nwb files convert");
    assert.ok(tally.files >= 15, `${tally.files} files compared`);
    assert.ok(tally.datasets >= 250, `${tally.datasets} datasets`);
    assert.ok(tally.selections >= 700, `${tally.selections} selections`);
    assert.ok(tally.objectSelections >= 50, `${tally.objectSelections} object-dtype selections`);
  });
});

describe("GET /slice options and errors", () => {
  const NWB = "generated-nwb/ecephys.nwb";
  const DATA = "/acquisition/ElectricalSeries/data";

  test("a large json answer is streamed in pieces (chunked, no Content-Length) and equals the bin answer", async () => {
    const rel = "synthetic/chunk_index_latest.h5";
    const p = "/fixed_array_many"; // 200,000 float32: over the streaming threshold
    const [json, bin] = await Promise.all([call(base, slice(rel, p, "")), call(base, slice(rel, p, "&format=bin"))]);
    assert.equal(json.status, 200, json.body.toString().slice(0, 200));
    assert.equal(json.headers["content-type"], "application/json");
    assert.equal(json.headers["transfer-encoding"], "chunked");
    assert.equal(json.headers["content-length"], undefined);
    const j = json.json<{ dtype: string; shape: number[]; data: unknown }>();
    assert.equal(j.dtype, "<f4");
    assert.deepEqual(j.shape, [200_000]);
    assert.equal(bin.headers["x-dtype"], "<f4");
    assert.equal(jsonVsBin(flatten(j.data, j.shape), fromBytes("<f4", [200_000], bin.body)), null);
    // a small answer is sent whole
    const small = await call(base, slice(rel, p, "&select=0:10"));
    assert.equal(small.headers["content-length"], String(small.body.length));
  });

  test("dtype=safe: float16 → float32 and big-endian → little-endian", async () => {
    const f16 = DTYPES[1]!;
    const be = DTYPES[0]!;
    let seenHalf = 0;
    let seenBig = 0;
    for (const [rel, want] of [
      [f16, "f2"],
      [be, ">"],
    ] as const) {
      await withH5File(corpusFile(rel), async (f, M) => {
        for (const p of listDatasetPaths(f, M)) {
          const nat = await call(base, slice(rel, p, "&format=bin"));
          if (nat.status !== 200) continue;
          const dt = nat.headers["x-dtype"]!;
          const isTarget = want === "f2" ? /^[<>]f2$/.test(dt) : dt.startsWith(">");
          if (!isTarget) continue;
          const safe = await call(base, slice(rel, p, "&format=bin&dtype=safe"));
          assert.equal(safe.status, 200);
          const sdt = safe.headers["x-dtype"]!;
          const native = fromBytes(dt, [], nat.body).data as ArrayLike<number | bigint>;
          const converted = fromBytes(sdt, [], safe.body).data as ArrayLike<number | bigint>;
          assert.equal(converted.length, native.length);
          if (want === "f2") {
            assert.equal(sdt, "<f4", p);
            seenHalf++;
            for (let i = 0; i < native.length; i++) {
              const h = halfToNumber(native[i] as number);
              assert.ok(Object.is(h, converted[i]) || (Number.isNaN(h) && Number.isNaN(converted[i] as number)), `${p}[${i}]`);
            }
          } else {
            assert.equal(sdt, `<${dt.slice(1)}`, p);
            seenBig++;
            for (let i = 0; i < native.length; i++) {
              const a = native[i]!;
              const b = converted[i]!;
              assert.ok(a === b || (Number.isNaN(a) && Number.isNaN(b)), `${p}[${i}]`);
            }
          }
          // npy says the same dtype
          const npy = parseNpy((await call(base, slice(rel, p, "&format=npy&dtype=safe"))).body);
          assert.equal(npy.descr, sdt);
        }
      });
    }
    assert.ok(seenHalf >= 1, "a float16 dataset");
    assert.ok(seenBig >= 3, "big-endian datasets");
  });

  test("errors: bad and out-of-bounds selections 400, unknown path 404, group 400, 406, 413 naming the limit; all JSON", async () => {
    const expectError = async (q: string, status: number, re?: RegExp) => {
      const a = await call(base, q);
      assert.equal(a.status, status, `${q}: ${a.body.toString()}`);
      assert.match(String(a.headers["content-type"]), /^application\/json/);
      const e = a.json<{ statusCode: number; error: string; message: string }>();
      assert.equal(e.statusCode, status);
      assert.equal(typeof e.error, "string");
      if (re) assert.match(e.message, re);
      return e;
    };
    await expectError(slice(NWB, DATA, "&select=0:abc"), 400, /not an integer/);
    await expectError(slice(NWB, DATA, "&select=90000"), 400, /out of bounds/);
    await expectError(slice(NWB, DATA, "&select=0,0,0"), 400, /3 entries/);
    await expectError(slice(NWB, DATA, "&select=::-1"), 400, /negative step/);
    await expectError(slice(NWB, "/acquisition/nope", ""), 404);
    await expectError(slice(NWB, "/acquisition", ""), 400, /group/);
    await expectError(slice(NWB, "/file_create_date", "&format=bin"), 406, /json/);
    await expectError(slice(NWB, "/file_create_date", "&format=npy"), 406);
    await expectError(slice(NWB, DATA, "&format=xml"), 400);
    await expectError(slice(NWB, DATA, "&foo=1"), 400, /unknown/);
    await expectError(`/slice?path=${DATA}`, 400, /exactly one of url= .* or lindi=/);
    await expectError(`/slice?url=${encodeURIComponent(origin.url(NWB))}&lindi=${encodeURIComponent(origin.url(NWB))}&path=${DATA}`, 400, /exactly one/);
    await expectError(`/slice?url=${encodeURIComponent("http://example.org/x.nwb")}&path=${DATA}`, 403, /not allowed/);
    await expectError(`/slice?url=${encodeURIComponent(origin.url("generated-nwb/missing.nwb"))}&path=${DATA}`, 404);
    // over the limits: a second server with small limits; the message names the limit and its value
    const small = await mkdtemp(path.join(tmpdir(), "lindi-data-test-"));
    const s2 = await buildServer(testConfig(small, { sliceMaxElements: 1000, sliceMaxBytes: 1500 }));
    try {
      await s2.listen({ port: 0, host: "127.0.0.1" });
      const b2 = `http://127.0.0.1:${(s2.server.address() as { port: number }).port}`;
      const e1 = await call(b2, slice(NWB, DATA, "&select=0:100"));
      assert.equal(e1.status, 413);
      assert.match(e1.json<{ message: string }>().message, /1600 elements; the limit is 1000 \(LINDI_SLICE_MAX_ELEMENTS\)/);
      const e2 = await call(b2, slice(NWB, DATA, "&select=0:50"));
      assert.equal(e2.status, 413);
      assert.match(e2.json<{ message: string }>().message, /1600 bytes of decoded values; the limit is 1500 \(LINDI_SLICE_MAX_BYTES\)/);
      assert.equal((await call(b2, slice(NWB, DATA, "&select=0:40"))).status, 200);
    } finally {
      await s2.close();
      await rm(small, { recursive: true, force: true });
    }
  });
});
