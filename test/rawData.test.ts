/**
 * Our own dataset reader (layout reader + filter decoders), the fallback for
 * values h5wasm cannot read, must give exactly what HDF5 gives where HDF5 can.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { FileByteSource } from "../src/hdf5/byteSource.ts";
import { Hdf5LayoutReader } from "../src/hdf5/layout/index.ts";
import { lzfDecompress, unshuffle } from "../src/hdf5/filterDecoders.ts";
import { readRawDataset } from "../src/hdf5/rawData.ts";
import { swapElements } from "../src/hdf5/values.ts";
import { isFixedSizeSimple } from "../src/hdf5/walk.ts";
import { corpusFile, listDatasetPaths, objectAddress, readRawDataset as readWithHdf5, withH5File } from "./support/corpus.ts";

const FILES = [
  "synthetic/chunk_index_latest.h5",
  "synthetic/chunk_index_earliest.h5",
  "synthetic/filters.h5",
  "synthetic/layouts.h5",
  "generated-nwb/ecephys.nwb",
  "hdf5-1.10.8/test/be_data.h5",
];

for (const rel of FILES) {
  test(`own decoding equals HDF5's for every readable dataset of ${rel}`, async () => {
    const source = await FileByteSource.open(corpusFile(rel));
    const reader = await Hdf5LayoutReader.open(source);
    let compared = 0;
    try {
      await withH5File(corpusFile(rel), async (f, M) => {
        for (const path of listDatasetPaths(f, M)) {
          const md = M.get_dataset_metadata(f.file_id, path);
          if (!isFixedSizeSimple(md) || md.shape === null || md.total_size > 2_000_000) continue;
          const expected = readWithHdf5(f, M, path, md.size * md.total_size);
          if (expected === null) continue; // HDF5 cannot read it either (missing plugin)
          const info = await reader.readDataset(objectAddress(f, M, path));
          if (info.filters.some((x) => [4, 5, 6].includes(x.id))) continue; // szip, nbit, scaleoffset: no decoder
          const raw = (await readRawDataset(reader, info)).slice();
          const le = md.littleEndian || md.size <= 1 || md.type === 3 ? raw : swapElements(raw, md.size);
          assert.deepEqual(le, expected, `${rel}:${path}`);
          compared++;
        }
      });
    } finally {
      await source.close();
    }
    assert.ok(compared > 0, `${rel}: no dataset compared`);
  });
}

test("unshuffle undoes HDF5's byte shuffle and keeps a trailing remainder", () => {
  const shuffled = Uint8Array.from([1, 3, 5, 2, 4, 6, 9]);
  assert.deepEqual(unshuffle(shuffled, 2), Uint8Array.from([1, 2, 3, 4, 5, 6, 9]));
});

test("LZF literal runs and back references decode", () => {
  // "abcabcabc": literal "abc" (ctrl 2), then a back reference of length 6 at distance 3
  const stream = Uint8Array.from([2, 97, 98, 99, (4 << 5) | 0, 2]);
  assert.equal(Buffer.from(lzfDecompress(stream, 9)).toString(), "abcabcabc");
  assert.throws(() => lzfDecompress(Uint8Array.from([0x20, 50]), 4), /corrupt LZF/);
});

test("external raw files are read next to the HDF5 file, never outside it", async () => {
  const { siblingFileOpener } = await import("../src/lindi/indexHdf5.ts");
  const open = siblingFileOpener(corpusFile("h5serv/test/test_files/h5ex_d_extern.h5"));
  await assert.rejects(open("../../etc/passwd"), /not a plain relative name/);
  await assert.rejects(open("/etc/passwd"), /not a plain relative name/);
});

test("variable-length strings read through the global heap equal HDF5's", async () => {
  const rel = "generated-nwb/ecephys.nwb";
  const source = await FileByteSource.open(corpusFile(rel));
  const reader = await Hdf5LayoutReader.open(source);
  let compared = 0;
  try {
    await withH5File(corpusFile(rel), async (f, M) => {
      for (const path of listDatasetPaths(f, M)) {
        const md = M.get_dataset_metadata(f.file_id, path);
        if (md.type !== 3 || !md.vlen || md.shape === null) continue;
        const info = await reader.readDataset(objectAddress(f, M, path));
        const raw = await readRawDataset(reader, info);
        const count = md.shape.reduce((a, b) => a * b, 1);
        const strings = (await reader.readVlenElements(raw, count)).map((b) => new TextDecoder().decode(b));
        const expected = f.get(path) as unknown as { value: unknown };
        const value = expected.value;
        assert.deepEqual(strings, Array.isArray(value) ? value : [value], path);
        compared++;
      }
    });
  } finally {
    await source.close();
  }
  assert.ok(compared >= 3, `only ${compared} vlen string datasets compared`);
});

test("custom float layouts convert to IEEE like HDF5's conversion", async () => {
  const { customFloatValue, isIeeeLayout } = await import("../src/hdf5/customFloat.ts");
  // be_data.h5's N-bit test type: sign at 26, 6-bit exponent at 20, 13-bit mantissa at 7, bias 31
  const layout = { bitOffset: 7, precision: 20, signPosition: 26, exponentPosition: 20, exponentSize: 6, mantissaPosition: 7, mantissaSize: 13, exponentBias: 31, normalization: 2 };
  const encode = (sign: number, exp: number, mant: number) => {
    const v = (sign << 26) | (exp << 20) | (mant << 7);
    return Uint8Array.from([v & 255, (v >> 8) & 255, (v >> 16) & 255, (v >>> 24) & 255]);
  };
  assert.equal(customFloatValue(encode(0, 31, 0), layout), 1);
  assert.equal(customFloatValue(encode(1, 32, 1 << 12), layout), -3);
  assert.equal(customFloatValue(encode(0, 0, 0), layout), 0);
  assert.equal(isIeeeLayout(layout, 4), false);
  assert.equal(isIeeeLayout({ bitOffset: 0, precision: 32, signPosition: 31, exponentPosition: 23, exponentSize: 8, mantissaPosition: 0, mantissaSize: 23, exponentBias: 127, normalization: 2 }, 4), true);
});
