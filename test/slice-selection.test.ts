/**
 * Selection parsing edge cases, slice limits, path resolution (not found,
 * groups, soft links), scalars and zero-size datasets.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import type { PyJson } from "../src/lindi/pythonJson.ts";
import { NotADatasetError, PathNotFoundError, readSlice, SliceTooLargeError } from "../src/slices/readSlice.ts";
import { fileRangeReader } from "../src/slices/refStore.ts";
import { formatSelection, parseSelection, SelectionError } from "../src/slices/selection.ts";
import { corpusFile } from "./support/corpus.ts";

const dims = (text: string, shape: number[]) => parseSelection(text, shape).dims;

test("selection: indices, ranges, steps, omitted parts, negatives", () => {
  assert.deepEqual(dims("3", [10]), [{ kind: "index", index: 3 }]);
  assert.deepEqual(dims("-1", [10]), [{ kind: "index", index: 9 }]);
  assert.deepEqual(dims("-10", [10]), [{ kind: "index", index: 0 }]);
  assert.deepEqual(dims("2:5", [10]), [{ kind: "slice", start: 2, stop: 5, step: 1, count: 3 }]);
  assert.deepEqual(dims("::3", [10]), [{ kind: "slice", start: 0, stop: 10, step: 3, count: 4 }]);
  assert.deepEqual(dims("1::3", [10]), [{ kind: "slice", start: 1, stop: 10, step: 3, count: 3 }]);
  assert.deepEqual(dims(":", [10]), [{ kind: "slice", start: 0, stop: 10, step: 1, count: 10 }]);
  assert.deepEqual(dims("::", [10]), [{ kind: "slice", start: 0, stop: 10, step: 1, count: 10 }]);
  assert.deepEqual(dims("-3:", [10]), [{ kind: "slice", start: 7, stop: 10, step: 1, count: 3 }]);
  assert.deepEqual(dims(":-2", [10]), [{ kind: "slice", start: 0, stop: 8, step: 1, count: 8 }]);
  assert.deepEqual(dims(" 1 : 4 : 2 ", [10]), [{ kind: "slice", start: 1, stop: 4, step: 2, count: 2 }]);
  assert.deepEqual(dims("+2:+4", [10]), [{ kind: "slice", start: 2, stop: 4, step: 1, count: 2 }]);
  // Python clamping of slice bounds; empty ranges are allowed
  assert.deepEqual(dims("5:100", [10]), [{ kind: "slice", start: 5, stop: 10, step: 1, count: 5 }]);
  assert.deepEqual(dims("-100:3", [10]), [{ kind: "slice", start: 0, stop: 3, step: 1, count: 3 }]);
  assert.deepEqual(dims("7:3", [10]), [{ kind: "slice", start: 7, stop: 3, step: 1, count: 0 }]);
  assert.deepEqual(dims("20:30", [10]), [{ kind: "slice", start: 10, stop: 10, step: 1, count: 0 }]);
});

test("selection: shapes, dropped dimensions, defaults for missing entries", () => {
  const s = parseSelection("0:10,::2,5", [100, 7, 8]);
  assert.deepEqual(s.shape, [10, 4]);
  assert.equal(s.count, 40);
  assert.equal(s.whole, false);
  assert.equal(formatSelection(s), "0:10,0:7:2,5");
  assert.deepEqual(parseSelection("2", [4, 5, 6]).shape, [5, 6]);
  assert.deepEqual(parseSelection("", [4, 5]).shape, [4, 5]);
  assert.equal(parseSelection(null, [4, 5]).whole, true);
  assert.equal(parseSelection(undefined, [4, 5]).count, 20);
  assert.deepEqual(parseSelection("[1:3, 2]", [4, 5]).shape, [2]);
  assert.deepEqual(parseSelection("1,", [4, 5]).shape, [5]);
  assert.deepEqual(parseSelection("1,2", [4, 5]).shape, []);
  assert.equal(parseSelection("1,2", [4, 5]).count, 1);
  assert.deepEqual(parseSelection("", []).shape, []);
  assert.equal(parseSelection("", []).count, 1);
  assert.equal(parseSelection(":", [0]).count, 0);
});

test("selection: clear errors for malformed and out-of-bounds selections", () => {
  const bad: [string, number[], RegExp][] = [
    ["10", [10], /out of bounds for dimension 0 of size 10/],
    ["-11", [10], /out of bounds/],
    ["0", [0], /out of bounds/],
    ["1,2,3", [4, 5], /3 entries for a dataset of 2 dimensions/],
    ["0", [], /scalar/],
    ["::0", [10], /cannot be zero/],
    ["::-1", [10], /negative step/],
    ["a", [10], /not an integer/],
    ["1.5", [10], /not an integer/],
    ["1:2:3:4", [10], /more than two ':'/],
    ["1,,2", [4, 5, 6], /empty entry for dimension 1/],
    ["1:x", [10], /stop for dimension 0: "x" is not an integer/],
    ["99999999999999999999", [10], /out of range/],
  ];
  for (const [text, shape, re] of bad) {
    assert.throws(
      () => parseSelection(text, shape),
      (e) => e instanceof SelectionError && re.test(e.message) && e.selection === text,
      `${text} on [${shape}]`,
    );
  }
});

// A hand-made document: a 2-D int32 array in 4 chunks (one never written), a scalar,
// zero-size arrays, groups and soft links (absolute, relative, chained, to a group).
function doc(): { refs: Record<string, PyJson> } {
  const chunk = (rows: number[]) => {
    const b = new Int32Array(4);
    rows.forEach((v, i) => (b[i] = v));
    return "base64:" + Buffer.from(b.buffer).toString("base64");
  };
  return {
    refs: {
      ".zgroup": { zarr_format: 2 },
      "g/.zgroup": { zarr_format: 2 },
      "g/a/.zarray": { chunks: [2, 2], compressor: null, dtype: "<i4", fill_value: -1, filters: null, order: "C", shape: [4, 3], zarr_format: 2 },
      "g/a/0.0": chunk([0, 1, 3, 4]),
      "g/a/0.1": chunk([2, 0, 5, 0]),
      "g/a/1.0": chunk([6, 7, 9, 10]),
      // 1.1 never written → fill value -1
      "g/s/.zarray": { chunks: [1], compressor: null, dtype: "<f8", fill_value: 0, filters: null, order: "C", shape: [1], zarr_format: 2 },
      "g/s/.zattrs": { _SCALAR: true },
      "g/s/0": "base64:" + Buffer.from(new Float64Array([2.5]).buffer).toString("base64"),
      "g/empty/.zarray": { chunks: [1, 1], compressor: null, dtype: "<f4", fill_value: 0, filters: null, order: "C", shape: [0, 3], zarr_format: 2 },
      "g/emptyobj/.zarray": { chunks: [1], compressor: null, dtype: "|O", fill_value: 0, filters: null, order: "C", shape: [0], zarr_format: 2 },
      "abs/.zgroup": { zarr_format: 2 },
      "abs/.zattrs": { _SOFT_LINK: { path: "/g/a" } },
      "g/rel/.zgroup": { zarr_format: 2 },
      "g/rel/.zattrs": { _SOFT_LINK: { path: "s" } },
      "chain/.zgroup": { zarr_format: 2 },
      "chain/.zattrs": { _SOFT_LINK: { path: "/abs" } },
      "grouplink/.zgroup": { zarr_format: 2 },
      "grouplink/.zattrs": { _SOFT_LINK: { path: "/g" } },
      "loop1/.zgroup": { zarr_format: 2 },
      "loop1/.zattrs": { _SOFT_LINK: { path: "/loop2" } },
      "loop2/.zgroup": { zarr_format: 2 },
      "loop2/.zattrs": { _SOFT_LINK: { path: "/loop1" } },
    },
  };
}

test("readSlice: chunked values, never-written chunks read as the fill value, edges", async () => {
  const d = doc();
  const all = await readSlice(d, "/g/a", "");
  assert.deepEqual(all.shape, [4, 3]);
  assert.deepEqual([...(all.data as Int32Array)], [0, 1, 2, 3, 4, 5, 6, 7, -1, 9, 10, -1]);
  assert.deepEqual([...((await readSlice(d, "g/a", "::2,-1")).data as Int32Array)], [2, -1]);
  assert.deepEqual((await readSlice(d, "g/a", "1,1")).shape, []);
  assert.deepEqual([...((await readSlice(d, "g/a", "1,1")).data as Int32Array)], [4]);
  const s = await readSlice(d, "g/s", "");
  assert.deepEqual(s.shape, []);
  assert.deepEqual([...(s.data as Float64Array)], [2.5]);
  await assert.rejects(readSlice(d, "g/s", "0"), SelectionError);
});

test("readSlice: zero-size arrays and empty selections need no chunks", async () => {
  const d = doc();
  const e = await readSlice(d, "g/empty", "", { rangeReader: () => Promise.reject(new Error("no reads expected")) });
  assert.deepEqual(e.shape, [0, 3]);
  assert.ok(e.data instanceof Float32Array && e.data.length === 0);
  assert.deepEqual((await readSlice(d, "g/emptyobj", "")).data, []);
  const none = await readSlice(d, "g/a", "3:1");
  assert.deepEqual(none.shape, [0, 3]);
  assert.equal((none.data as Int32Array).length, 0);
});

test("readSlice: soft links in any path component, relative and chained; loops end", async () => {
  const d = doc();
  for (const p of ["/abs", "chain", "grouplink/a", "/grouplink/a/"]) {
    const r = await readSlice(d, p, "0");
    assert.equal(r.path, "g/a", p);
    assert.deepEqual([...(r.data as Int32Array)], [0, 1, 2]);
  }
  assert.equal((await readSlice(d, "g/rel", "")).path, "g/s");
  await assert.rejects(readSlice(d, "loop1", ""), (e) => e instanceof PathNotFoundError && /too many soft links/.test(e.message));
});

test("readSlice: missing paths and groups are typed errors", async () => {
  const d = doc();
  for (const p of ["nope", "/g/nope", "g/a/x", "g/a/0.0", ""]) {
    await assert.rejects(readSlice(d, p, ""), (e) => (p === "" ? e instanceof NotADatasetError : e instanceof PathNotFoundError), p);
  }
  await assert.rejects(readSlice(d, "/g", ""), (e) => e instanceof NotADatasetError && e.path === "g");
  await assert.rejects(readSlice(d, "grouplink", ""), NotADatasetError);
});

test("readSlice: limits name the limit (elements, bytes, chunks)", async () => {
  const d = doc();
  await assert.rejects(readSlice(d, "g/a", "", { maxElements: 11 }), (e) => e instanceof SliceTooLargeError && e.limit === "maxElements" && e.requested === 12 && e.max === 11);
  await assert.rejects(readSlice(d, "g/a", "", { maxBytes: 47 }), (e) => e instanceof SliceTooLargeError && e.limit === "maxBytes" && e.requested === 48);
  await assert.rejects(readSlice(d, "g/a", "", { maxChunks: 3 }), (e) => e instanceof SliceTooLargeError && e.limit === "maxChunks" && e.requested === 4);
  // a strided selection touching two of the four chunks fits under maxChunks 2
  assert.deepEqual((await readSlice(d, "g/a", "::2,0:2", { maxChunks: 2 })).shape, [2, 2]);
  assert.deepEqual((await readSlice(d, "g/a", "0:2", { maxElements: 6, maxBytes: 24 })).shape, [2, 3]);
  assert.match(new SliceTooLargeError("maxBytes", 10, 5).message, /maxBytes = 5/);
});

test("readSlice on NWB files: a soft link to a dataset reads the target", async () => {
  const rel = "pynwb/_history/b24ace0b71/tests/integration/ui_write/496908818s.nwb";
  const abs = corpusFile(rel);
  const d = await indexLocalFile(abs, { url: abs });
  const link = "processing/brain_observatory_pipeline/Fluorescence/imaging_plane_1/neuropil_traces";
  const target = "processing/brain_observatory_pipeline/Fluorescence/imaging_plane_1_neuropil_response/data";
  assert.ok(d.refs[`${link}/.zattrs`] && d.refs[`${target}/.zarray`]);
  const viaLink = await readSlice(d, `/${link}`, "", { rangeReader: fileRangeReader() });
  const direct = await readSlice(d, target, "", { rangeReader: fileRangeReader() });
  assert.equal(viaLink.path, target);
  assert.deepEqual(viaLink, direct);
  assert.ok((viaLink.data as { length: number }).length > 0);
});
