/**
 * Response encoders: json round trip, npy parsed back (header + data), bin
 * bytes, NotRepresentableError for variable-size data. Results come from real
 * readSlice calls on small hand-made LINDI documents and on corpus files.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { encodeBloscLz4Sync } from "../src/lindi/codecs/blosc.ts";
import { encodeJson2, JSON2_FILTER_CONFIG } from "../src/lindi/codecs/json2.ts";
import { encodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { PyFloat, type PyJson } from "../src/lindi/pythonJson.ts";
import { encodeBin, encodeJson, encodeJsonPieces, encodeNpy, encodeSlice, float16Text, float32Text, NotRepresentableError, npyHeader } from "../src/slices/encode.ts";
import { readSlice, type SliceResult } from "../src/slices/readSlice.ts";
import { fileRangeReader } from "../src/slices/refStore.ts";
import { corpusFile } from "./support/corpus.ts";

const BLOSC = { blocksize: 0, clevel: 5, cname: "lz4", id: "blosc", shuffle: 1 };

/** One inline array (Blosc-compressed chunk = whole array), as the generator writes them. */
function inlineArray(refs: Record<string, PyJson>, key: string, dtype: string, shape: number[], raw: Uint8Array, attrs?: Record<string, PyJson>): void {
  refs[`${key}/.zarray`] = { chunks: shape.length ? shape : [1], compressor: BLOSC, dtype, fill_value: 0, filters: null, order: "C", shape: shape.length ? shape : [1], zarr_format: 2 };
  if (attrs) refs[`${key}/.zattrs`] = attrs;
  const size = Number(/\d+$/.exec(dtype)?.[0] ?? 1);
  refs[`${key}/${shape.length > 1 ? shape.map(() => 0).join(".") : "0"}`] = encodeInlineBytes(encodeBloscLz4Sync(raw, dtype.includes("U") ? 4 : size));
}

function objectArray(refs: Record<string, PyJson>, key: string, items: PyJson[], shape: number[], attrs?: Record<string, PyJson>): void {
  refs[`${key}/.zarray`] = { chunks: shape, compressor: BLOSC, dtype: "|O", fill_value: 0, filters: [JSON2_FILTER_CONFIG], order: "C", shape, zarr_format: 2 };
  if (attrs) refs[`${key}/.zattrs`] = attrs;
  refs[`${key}/${shape.map(() => 0).join(".")}`] = encodeInlineBytes(encodeBloscLz4Sync(encodeJson2(items, shape), 1));
}

function bytes(t: ArrayBufferView): Uint8Array {
  return new Uint8Array(t.buffer, t.byteOffset, t.byteLength);
}

function sampleDoc(): { refs: Record<string, PyJson> } {
  const refs: Record<string, PyJson> = { ".zgroup": { zarr_format: 2 } };
  inlineArray(refs, "f8", "<f8", [2, 3], bytes(new Float64Array([1.5, NaN, Infinity, -Infinity, -0, 1e300])));
  inlineArray(refs, "f4", "<f4", [4], bytes(new Float32Array([0.1, 1 / 3, 16777216, -2.5])));
  inlineArray(refs, "f2", "<f2", [4], bytes(new Uint16Array([0x3c00, 0x3555, 0x7c00, 0x7e00]))); // 1, 0.333, inf, nan
  inlineArray(refs, "i8", "<i8", [3], bytes(new BigInt64Array([1n, -(2n ** 63n), 2n ** 53n + 1n])));
  inlineArray(refs, "u8", "<u8", [2], bytes(new BigUint64Array([2n ** 64n - 1n, 7n])));
  inlineArray(refs, "be", ">i4", [3], Uint8Array.from([0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78]));
  inlineArray(refs, "b1", "|b1", [3], Uint8Array.from([1, 0, 1]));
  inlineArray(refs, "s5", "|S5", [2], Uint8Array.from([0x61, 0x62, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
  inlineArray(refs, "u3", "<U3", [2], bytes(new Uint32Array([0x78, 0xfc, 0, 0x1f600, 0x41, 0x42])));
  inlineArray(refs, "scalar", "<i4", [], bytes(new Int32Array([42])), { _SCALAR: true });
  objectArray(refs, "strs", ["a", "ü\"", "", "x\ny"], [4]);
  objectArray(refs, "nested", [[new PyFloat(1.5), new PyFloat(NaN)], [new PyFloat(Infinity), 2]], [2, 2]);
  objectArray(
    refs,
    "cmp",
    [
      [1, new PyFloat(0.5), { _REFERENCE: { object_id: null, path: "/f8", source: ".", source_object_id: null } }],
      [2, new PyFloat(-1), { _REFERENCE: { object_id: null, path: "/f4", source: ".", source_object_id: null } }],
    ],
    [2],
    { _COMPOUND_DTYPE: [["n", "int32"], ["x", "float64"], ["ref", "<REFERENCE>"]] },
  );
  return { refs };
}

const doc = sampleDoc();
const read = (p: string, sel = "", opts: Parameters<typeof readSlice>[3] = {}) => readSlice(doc, p, sel, opts);

/** Decodes a json-encoded value the documented way: "NaN"/"Infinity" strings → numbers, big ints as strings. */
function flatJson(v: unknown, shape: number[]): unknown[] {
  if (shape.length === 0) return [v];
  const out: unknown[] = [];
  const rec = (x: unknown, d: number) => {
    if (d === shape.length) out.push(x);
    else {
      assert.ok(Array.isArray(x) && x.length === shape[d]);
      for (const y of x) rec(y, d + 1);
    }
  };
  rec(v, 0);
  return out;
}

function fromJsonNumber(x: unknown): number {
  if (x === "NaN") return NaN;
  if (x === "Infinity") return Infinity;
  if (x === "-Infinity") return -Infinity;
  assert.equal(typeof x, "number");
  return x as number;
}

test("json: numbers round-trip, NaN/Infinity as strings, big ints as strings", async () => {
  for (const p of ["f8", "f4", "be", "scalar"]) {
    const r = await read(p);
    const j = JSON.parse(encodeJson(r)) as { dtype: string; shape: number[]; data: unknown };
    assert.equal(j.dtype, r.dtype);
    assert.deepEqual(j.shape, r.shape);
    const vals = flatJson(j.data, j.shape).map(fromJsonNumber);
    const Ctor = (r.data as Float64Array).constructor as Float64ArrayConstructor;
    assert.deepEqual(bytes(new Ctor(vals)), bytes(r.data as Float64Array), p);
  }
  const f8 = JSON.parse(encodeJson(await read("f8")));
  assert.deepEqual(f8.data, [[1.5, "NaN", "Infinity"], ["-Infinity", -0, 1e300]]);
  assert.ok(encodeJson(await read("f8")).includes("-0.0"), "negative zero keeps its sign");
  // float32 prints the shortest digits that read back to the same float32
  assert.deepEqual(JSON.parse(encodeJson(await read("f4"))).data, [0.1, 0.33333334, 16777216, -2.5]);
  assert.equal(float32Text(Math.fround(0.1)), "0.1");
  // float16 (native: Uint16Array of half bits) prints values
  assert.deepEqual(JSON.parse(encodeJson(await read("f2"))).data, [1, 0.3333, "Infinity", "NaN"]);
  assert.equal(float16Text(0.333251953125), "0.3333");
  // int64 beyond 2^53 → strings, others numbers
  assert.deepEqual(JSON.parse(encodeJson(await read("i8"))).data, [1, "-9223372036854775808", "9007199254740993"]);
  assert.deepEqual(JSON.parse(encodeJson(await read("u8"))).data, ["18446744073709551615", 7]);
  assert.deepEqual(JSON.parse(encodeJson(await read("be"))).data, [1, -2, 0x12345678]);
  assert.deepEqual(JSON.parse(encodeJson(await read("b1"))).data, [true, false, true]);
  assert.deepEqual(JSON.parse(encodeJson(await read("scalar"))), { dtype: "<i4", shape: [], data: 42 });
});

test("json: strings, object arrays, N-D object arrays, compound rows", async () => {
  assert.deepEqual(JSON.parse(encodeJson(await read("s5"))).data, ["ab", "hello"]);
  assert.deepEqual(JSON.parse(encodeJson(await read("u3"))).data, ["xü", "😀AB"]);
  assert.deepEqual(JSON.parse(encodeJson(await read("strs"))), { dtype: "|O", shape: [4], data: ["a", 'ü"', "", "x\ny"] });
  assert.deepEqual(JSON.parse(encodeJson(await read("nested"))).data, [[1.5, "NaN"], ["Infinity", 2]]);
  assert.deepEqual(JSON.parse(encodeJson(await read("nested", "1,0"))), { dtype: "|O", shape: [], data: "Infinity" });
  const cmp = JSON.parse(encodeJson(await read("cmp")));
  assert.equal(cmp.dtype, "[('n', '<i4'), ('x', '<f8'), ('ref', '|O')]");
  assert.deepEqual(cmp.fields, [
    { name: "n", dtype: "<i4" },
    { name: "x", dtype: "<f8" },
    { name: "ref", dtype: "|O" },
  ]);
  assert.deepEqual(cmp.data[1], { n: 2, x: -1, ref: { _REFERENCE: { object_id: null, path: "/f4", source: ".", source_object_id: null } } });
});

/** A minimal independent .npy (v1.0) reader. */
function parseNpy(b: Uint8Array): { descr: string; fortran: boolean; shape: number[]; data: Uint8Array; headerLen: number } {
  assert.deepEqual([...b.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59], "magic");
  assert.equal(b[6], 1);
  assert.equal(b[7], 0);
  const hlen = b[8]! | (b[9]! << 8);
  assert.equal((10 + hlen) % 64, 0, "header padded to a multiple of 64");
  const header = Buffer.from(b.subarray(10, 10 + hlen)).toString("latin1");
  assert.ok(header.endsWith("\n"));
  const m = /^\{'descr': '([^']+)', 'fortran_order': (True|False), 'shape': \(([^)]*)\), \}\s*$/.exec(header);
  assert.ok(m, `header ${JSON.stringify(header)}`);
  const shape = m[3]!.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  return { descr: m[1]!, fortran: m[2] === "True", shape, data: b.subarray(10 + hlen), headerLen: hlen };
}

test("npy: a valid v1.0 file whose header and data equal the typed array", async () => {
  for (const p of ["f8", "f4", "f2", "i8", "u8", "be", "b1", "s5", "u3", "scalar"]) {
    const r = await read(p);
    const npy = parseNpy(encodeNpy(r));
    assert.equal(npy.descr, r.dtype, p);
    assert.equal(npy.fortran, false);
    assert.deepEqual(npy.shape, r.shape, p);
    assert.deepEqual(npy.data, encodeBin(r).body, p);
  }
  // values, not just bytes: little-endian data equals the typed array's bytes
  const f8 = await read("f8");
  assert.deepEqual(new Float64Array(parseNpy(encodeNpy(f8)).data.slice().buffer), f8.data);
  // big-endian kept as ">i4" natively (bytes as in the file), "<i4" with dtype=safe
  const be = parseNpy(encodeNpy(await read("be")));
  assert.equal(be.descr, ">i4");
  assert.deepEqual([...be.data], [0, 0, 0, 1, 0xff, 0xff, 0xff, 0xfe, 0x12, 0x34, 0x56, 0x78]);
  const beSafe = parseNpy(encodeNpy(await read("be", "", { dtype: "safe" })));
  assert.equal(beSafe.descr, "<i4");
  assert.deepEqual(new Int32Array(beSafe.data.slice().buffer), Int32Array.from([1, -2, 0x12345678]));
  assert.equal(parseNpy(encodeNpy(await read("scalar"))).shape.length, 0);
  assert.equal(Buffer.from(npyHeader("<f4", [3]).subarray(10)).toString().trim(), "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }");
});

test("bin: raw C-order bytes with dtype and shape; selections and dtype=safe", async () => {
  const f4 = await read("f4", "1:3");
  const bin = encodeBin(f4);
  assert.deepEqual(bin.body, bytes(Float32Array.from([1 / 3, 16777216])));
  assert.equal(bin.dtype, "<f4");
  assert.deepEqual(bin.shape, [2]);
  const half = await read("f2");
  assert.deepEqual(encodeBin(half).body, bytes(new Uint16Array([0x3c00, 0x3555, 0x7c00, 0x7e00])));
  const safe = await read("f2", "", { dtype: "safe" });
  assert.equal(safe.dtype, "<f4");
  assert.deepEqual(safe.data, Float32Array.from([1, 0.333251953125, Infinity, NaN]));
  const asFloat = await read("i8", "", { int64AsFloat64: true });
  assert.equal(asFloat.dtype, "<f8");
  assert.deepEqual(asFloat.data, Float64Array.from([1, -(2 ** 63), 2 ** 53]));
  assert.deepEqual(encodeBin(await read("s5")).body, Uint8Array.from([0x61, 0x62, 0, 0, 0, 0x68, 0x65, 0x6c, 0x6c, 0x6f]));
  const e = encodeSlice(await read("b1"), "bin");
  assert.equal(e.contentType, "application/octet-stream");
  assert.deepEqual(e.headers, { "x-dtype": "|b1", "x-shape": "3" });
  assert.deepEqual([...e.body], [1, 0, 1]);
});

test("bin/npy of object and compound data: NotRepresentableError", async () => {
  for (const p of ["strs", "nested", "cmp"]) {
    const r = await read(p);
    assert.throws(() => encodeBin(r), (e) => e instanceof NotRepresentableError && e.format === "bin");
    assert.throws(() => encodeNpy(r), (e) => e instanceof NotRepresentableError && e.format === "npy");
    assert.throws(() => encodeSlice(r, "npy"), NotRepresentableError);
    assert.doesNotThrow(() => encodeSlice(r, "json"));
  }
});

test("encoders on real data: json and npy of every dataset of an NWB file agree with the result", async () => {
  const abs = corpusFile("generated-nwb/ecephys.nwb");
  const d = await indexLocalFile(abs, { url: abs });
  let npyCount = 0;
  for (const k of Object.keys(d.refs).filter((k) => k.endsWith("/.zarray"))) {
    const p = k.slice(0, -"/.zarray".length);
    const r: SliceResult = await readSlice(d, p, "", { rangeReader: fileRangeReader() });
    const j = JSON.parse(encodeJson(r));
    assert.deepEqual(j.shape, r.shape);
    assert.equal(flatJson(j.data, r.shape).length, (r.data as { length: number }).length);
    if (!Array.isArray(r.data) || r.bytes) {
      const npy = parseNpy(encodeNpy(r));
      assert.deepEqual(npy.data, encodeBin(r).body);
      npyCount++;
    }
  }
  assert.ok(npyCount > 10);
});

test("float32Text is the shortest round-tripping text (against the linear definition, 450,000 values)", () => {
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  const linear = (v: number): string => {
    for (let p = 1; p <= 9; p++) {
      const s = v.toPrecision(p);
      if (Math.fround(Number(s)) === v) return String(Number(s));
    }
    throw new Error(`no text for ${v}`);
  };
  let seed = 12345;
  const rnd = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0);
  const values: number[] = [];
  for (let i = 0; i < 200_000; i++) {
    u[0] = rnd(); // every bit pattern: all exponents, subnormals
    if (Number.isFinite(f[0]!)) values.push(f[0]!);
  }
  for (let i = 0; i < 50_000; i++) values.push(Math.fround(Math.sin(i) * 10 ** ((i % 13) - 6)));
  for (let e = -149; e <= 127; e++) values.push(2 ** e, -(2 ** e), Math.fround(2 ** e * 1.5));
  for (let i = 0; i < 40_000; i++) values.push(Math.fround((i * 100003) % 2 ** 31)); // large integers (no fast path)
  // where the double-arithmetic shortcut is closest to its edges: binary fractions (exact decimal
  // ties at some precision), short decimals, and values next to powers of ten
  for (let i = 0; i < 60_000; i++) values.push(Math.fround((rnd() % 2 ** 20) / 2 ** ((i % 24) + 1)));
  for (let i = 0; i < 60_000; i++) values.push(Math.fround((rnd() % 10 ** 7) / 10 ** (i % 12)));
  for (let e = -38; e <= 38; e++) {
    const p = Math.fround(10 ** e);
    f[0] = p;
    const b = u[0]!;
    for (let d = -300; d <= 300; d++) {
      u[0] = b + d;
      if (Number.isFinite(f[0]!) && f[0]! > 0) values.push(f[0]!);
    }
  }
  for (const v of values) {
    if (Object.is(v, -0)) continue; // printed as "-0.0" by the caller
    const t = float32Text(v);
    assert.equal(Math.fround(Number(t)), v, `${t} reads back as ${v}`);
    assert.equal(t, linear(v), `shortest text of ${v}`);
  }
});

test("json in pieces: nested lists of every shape (empty axes, long rows cut into runs) for any piece size", () => {
  /** The nested lists of `shape` filled with 0, 1, 2, … in C order, built without the encoder. */
  const nested = (shape: number[], start = { i: 0 }): unknown => (shape.length === 0 ? start.i++ : Array.from({ length: shape[0]! }, () => nested(shape.slice(1), start)));
  const shapes = [[0], [1], [5], [2, 0], [0, 3], [2, 3, 4], [3, 1, 0, 2], [7, 1], [2, 2500], [5000]];
  for (const shape of shapes) {
    const n = shape.reduce((a, b) => a * b, 1);
    const r: SliceResult = { dtype: "<i4", shape, data: Int32Array.from({ length: n }, (_, i) => i), path: "x" };
    const whole = encodeJson(r);
    assert.deepEqual(JSON.parse(whole), { dtype: "<i4", shape, data: nested(shape) }, `shape [${shape}]`);
    for (const piece of [1, 2, 3, 1000, 1024, 4096]) {
      const pieces = [...encodeJsonPieces(r, piece)];
      assert.equal(pieces.join(""), whole, `shape [${shape}], pieces of ${piece}`);
      // a piece holds at most `piece` elements (the texts are 1–4 digits: count the commas)
      if (n > 0 && shape.length === 1) for (const p of pieces.slice(1)) assert.ok(p.split(",").length - 1 <= piece, `shape [${shape}], pieces of ${piece}`);
    }
  }
  // a scalar: the bare value
  assert.equal(encodeJson({ dtype: "<f4", shape: [], data: new Float32Array([0.1]), path: "x" }), '{"dtype":"<f4","shape":[],"data":0.1}');
});
