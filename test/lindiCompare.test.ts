import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { decodeBlosc, encodeBloscLz4Sync, readBloscHeader } from "../src/lindi/codecs/blosc.ts";
import { decodeJson2, encodeJson2 } from "../src/lindi/codecs/json2.ts";
import { decodeInlineBytes, encodeInlineBytes } from "../src/lindi/inlineBytes.ts";
import { PyFloat, parsePythonJson, stringifyPythonCompact, type PyJson, type PyJsonObject } from "../src/lindi/pythonJson.ts";
import { goldenPath, readGoldenList } from "./support/golden.ts";
import { compareLindi, jsonDiff } from "./support/lindiCompare.ts";

const STIMFIT = "neuroconv/_history/8673b9b12b/ephy_testing_data/stimfit/File_stimfit_3.h5";

function load(rel: string): PyJsonObject {
  return parsePythonJson(readFileSync(goldenPath(rel), "utf8")) as PyJsonObject;
}
const refsOf = (d: PyJsonObject) => d["refs"] as PyJsonObject;

/** Re-compress every inline Blosc chunk differently (clevel 9, no shuffle): bytes change, content not. */
async function recompressInline(doc: PyJsonObject): Promise<number> {
  let changed = 0;
  const refs = refsOf(doc);
  for (const [k, v] of Object.entries(refs)) {
    if (typeof v !== "string") continue;
    const frame = decodeInlineBytes(v);
    const h = readBloscHeader(frame);
    const raw = await decodeBlosc(frame);
    const re = encodeInlineBytes(encodeBloscLz4Sync(raw, h.typesize, { clevel: 9, shuffle: 0 }));
    if (re !== v) changed++;
    refs[k] = re;
  }
  return changed;
}

describe("compareLindi", () => {
  test("every golden equals itself (also with re-compressed inline chunks)", async () => {
    let recompressed = 0;
    for (const rel of readGoldenList()) {
      const text = readFileSync(goldenPath(rel), "utf8");
      const a = parsePythonJson(text) as PyJsonObject;
      assert.deepEqual(await compareLindi(a, text), [], rel);
      recompressed += await recompressInline(a);
      assert.deepEqual(await compareLindi(a, text), [], `${rel} (re-compressed)`);
    }
    assert.ok(recompressed > 1000, `${recompressed}`);
  });

  test("plain JSON.parse values compare by value with PyJson values (1 == 1.0)", async () => {
    const text = readFileSync(goldenPath(STIMFIT), "utf8");
    assert.match(text, /"fill_value": 0\.0/);
    assert.deepEqual(await compareLindi(JSON.parse(text), load(STIMFIT)), []);
    assert.deepEqual(await compareLindi(load(STIMFIT), JSON.parse(text)), []);
  });

  test("detects a changed offset, a missing key, an extra key, a changed attribute", async () => {
    const expected = load(STIMFIT);
    const actual = load(STIMFIT);
    const r = refsOf(actual);
    (r["10Vm/section_1/data/0"] as PyJson[])[1] = 102945;
    delete r["10Vm/section_2/.zgroup"];
    r["extra/.zgroup"] = { zarr_format: 2 };
    (r["10Vm/section_0/description/.zattrs"] as PyJsonObject)["TITLE"] = "changed";
    const diffs = await compareLindi(actual, expected);
    assert.equal(diffs.length, 4, diffs.join("\n"));
    assert.match(diffs.join("\n"), /1 key\(s\) missing from actual: "10Vm\/section_2\/\.zgroup"/);
    assert.match(diffs.join("\n"), /1 extra key\(s\) in actual: "extra\/\.zgroup"/);
    assert.match(diffs.join("\n"), /refs\["10Vm\/section_1\/data\/0"\]: offset 102945, expected 102944/);
    assert.match(diffs.join("\n"), /refs\["10Vm\/section_0\/description\/\.zattrs"\]: TITLE: actual "changed", expected "Description of sec0"/);
  });

  test("detects different inline content that still Blosc-decodes", async () => {
    const expected = load(STIMFIT);
    const actual = load(STIMFIT);
    const key = "10Vm/section_0/description/0";
    const r = refsOf(actual);
    const d = decodeJson2(await decodeBlosc(decodeInlineBytes(r[key] as string)));
    assert.equal(stringifyPythonCompact(d.items), '[[0.05,"ms","mV"]]');
    r[key] = encodeInlineBytes(encodeBloscLz4Sync(encodeJson2([[new PyFloat(0.05), "ms", "mA"]], d.shape), 1));
    const diffs = await compareLindi(actual, expected);
    assert.equal(diffs.length, 1, diffs.join("\n"));
    assert.match(diffs[0]!, /decoded json2 chunk differs: items\[0\]\[2\]: actual "mA", expected "mV"/);
    // a number written as int instead of float is equal by value
    r[key] = encodeInlineBytes(encodeBloscLz4Sync(encodeJson2([[new PyFloat(0.05), "ms", "mV"]], d.shape), 1));
    assert.deepEqual(await compareLindi(actual, expected), []);
    // garbage that does not decode
    r[key] = "not a blosc frame";
    assert.match((await compareLindi(actual, expected)).join("\n"), /cannot decode actual inline value/);
  });

  test("raw numeric inline chunks compare by decoded bytes", async () => {
    const raw = new Uint8Array(new Int32Array(300).map((_, i) => i * 7).buffer);
    const zarray = {
      chunks: [300],
      compressor: { blocksize: 0, clevel: 5, cname: "lz4", id: "blosc", shuffle: 1 },
      dtype: "<i4",
      fill_value: 0,
      filters: null,
      order: "C",
      shape: [300],
      zarr_format: 2,
    };
    const doc = (chunk: string, z: PyJsonObject = zarray) => ({ refs: { ".zgroup": { zarr_format: 2 }, "x/.zarray": z, "x/0": chunk }, version: 1 });
    const expected = doc(encodeInlineBytes(encodeBloscLz4Sync(raw, 4)));
    assert.deepEqual(await compareLindi(doc(encodeInlineBytes(encodeBloscLz4Sync(raw, 4, { clevel: 1, shuffle: 0 }))), expected), []);
    const other = raw.slice();
    other[401] = other[401]! ^ 1;
    const diffs = await compareLindi(doc(encodeInlineBytes(encodeBloscLz4Sync(other, 4))), expected);
    assert.deepEqual(diffs, ['refs["x/0"]: decoded chunk differs: bytes differ first at offset 401 (actual 0x3, expected 0x2)']);
    // an uncompressed actual chunk: the .zarray differs, the chunk content does not
    const plain = await compareLindi(doc(encodeInlineBytes(raw), { ...zarray, compressor: null }), expected);
    assert.equal(plain.length, 1, plain.join("\n"));
    assert.match(plain[0]!, /x\/\.zarray.*compressor/);
  });

  test("templates: names may differ, expansion is compared; mapUrl maps actual URLs", async () => {
    const expected = load(STIMFIT);
    const url = (expected["templates"] as PyJsonObject)["u1"] as string;
    const renamed = load(STIMFIT);
    renamed["templates"] = { u7: url };
    for (const v of Object.values(refsOf(renamed))) if (Array.isArray(v)) v[0] = "{{u7}}";
    assert.deepEqual(await compareLindi(renamed, expected), []);

    const literal = load(STIMFIT);
    delete literal["templates"];
    for (const v of Object.values(refsOf(literal))) if (Array.isArray(v)) v[0] = "https://host/f.h5";
    const unmapped = await compareLindi(literal, expected);
    assert.ok(unmapped.length > 0 && unmapped.every((l) => l.includes('url "https://host/f.h5"')), unmapped.join("\n"));
    assert.deepEqual(await compareLindi(literal, expected, { mapUrl: (u) => (u === "https://host/f.h5" ? url : u) }), []);

    const broken = load(STIMFIT);
    broken["templates"] = { u2: url };
    assert.ok((await compareLindi(broken, expected)).some((l) => l.includes('url "{{u1}}"')));
  });

  test("metadata by value; version; cap on the number of lines", async () => {
    const expected = load(STIMFIT);
    const a = load(STIMFIT);
    const za = refsOf(a)["10Vm/section_0/data/.zarray"] as PyJsonObject;
    assert.ok(za["fill_value"] instanceof PyFloat);
    za["fill_value"] = 0; // int 0 == float 0.0
    refsOf(a)[".zgroup"] = '{"zarr_format":2}'; // string metadata is parsed
    assert.deepEqual(await compareLindi(a, expected), []);
    za["fill_value"] = "NaN";
    a["version"] = 2;
    const diffs = await compareLindi(a, expected);
    assert.deepEqual(diffs, [
      "version: actual 2, expected 1",
      'refs["10Vm/section_0/data/.zarray"]: fill_value: actual "NaN", expected 0.0',
    ]);
    delete a["version"];
    assert.match((await compareLindi(a, expected))[0]!, /^version: actual \(absent\), expected 1/);

    const many = load(STIMFIT);
    for (const v of Object.values(refsOf(many))) if (Array.isArray(v)) v[2] = 1;
    const capped = await compareLindi(many, expected, { maxDiffs: 3 });
    assert.equal(capped.length, 4);
    assert.match(capped[3]!, /^\.\.\. and \d+ more difference\(s\)$/);
  });

  test("type mismatches and malformed documents are reported", async () => {
    const expected = load(STIMFIT);
    const a = load(STIMFIT);
    refsOf(a)["10Vm/section_1/data/0"] = "inline now";
    assert.match((await compareLindi(a, expected)).join("\n"), /actual is string .*expected list/);
    assert.match((await compareLindi({ version: 1 }, expected)).join("\n"), /actual: "refs" is missing/);
    assert.match((await compareLindi([] as PyJson, expected)).join("\n"), /actual: document is not a JSON object/);
  });

  test("jsonDiff", () => {
    assert.equal(jsonDiff({ a: [1, { b: new PyFloat(2) }] }, { a: [1, { b: 2n }] }), undefined);
    assert.equal(jsonDiff({ a: [1, { b: 3 }] }, { a: [1, { b: 2 }] }), "a[1].b: actual 3, expected 2");
    assert.match(jsonDiff({ a: 1 }, { b: 1 })!, /missing "b"; extra "a"/);
    assert.match(jsonDiff([1], [1, 2])!, /list of 1 items, expected 2/);
  });
});
