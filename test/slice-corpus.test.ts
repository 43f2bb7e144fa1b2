/**
 * readSlice against h5wasm on the corpus: every dataset of every NWB file under
 * generated-nwb/ and pynwb/, every synthetic/ file that indexes, and a list of
 * real files chosen for the features they carry (big-endian, float16,
 * fletcher32, blosc, zstd, shuffle, space-padded and non-UTF-8 fixed strings,
 * region references, compound rows with vlen members, external array links,
 * names with '#'). Full reads plus two random selections (seeded) per dataset;
 * a second pass indexes some files with chunksThreshold 0 so every chunked
 * dataset becomes an _EXTERNAL_ARRAY_LINK read from the HDF5 file itself.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { test } from "node:test";
import { LindiConversionError } from "../src/lindi/errors.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { UnsupportedDtypeError } from "../src/slices/codecs.ts";
import { ExternalDatasetCache, sourceOpener } from "../src/slices/external.ts";
import { datasetInfo, readSlice } from "../src/slices/readSlice.ts";
import { ChunkCache, fileRangeReader } from "../src/slices/refStore.ts";
import { parseSelection } from "../src/slices/selection.ts";
import { corpusFile, listDatasetPaths, requireCorpus, withH5File } from "./support/corpus.ts";
import { compareWithH5, randomSelection, seededRandom } from "./support/sliceCompare.ts";

const EXTRA_FILES = [
  "pyfive/tests/dataset_datatypes.hdf5", // every big-endian integer and float
  "jhdf/jhdf/src/test/resources/hdf5/float_special_values_earliest.hdf5", // float16, NaN, ±Inf
  "jhdf/jhdf/src/test/resources/hdf5/test_chunked_datasets_earliest.hdf5", // float16 chunked
  "h5serv/test/test_files/dset_gzip.h5", // shuffle + zlib + fletcher32
  "h5serv/test/test_files/h5ex_d_checksum.h5", // fletcher32
  "h5serv/test/test_files/h5ex_d_shuffle.h5",
  "hdf5_plugins/BLOSC/config/cmake/binex/example/testfiles/h5ex_d_blosc.h5",
  "hdf5plugin/test/blosc.h5",
  "hdf5_plugins/ZSTD/config/cmake/binex/example/testfiles/h5ex_d_zstd.h5",
  "jhdf/jhdf/src/test/resources/hdf5/chunked_v4_datasets.hdf5", // external array links
  "jhdf/jhdf/src/test/resources/hdf5/fixed_array_paged_datasets.hdf5",
  "hdf5-1.10.8/tools/testfiles/tstr2.h5", // space-padded |S
  "hdf5plugin/src/bitshuffle/tests/data/regression_0.1.3.h5", // |S bytes that are not UTF-8
  "h5serv/test/test_files/regionref_dset.h5", // region references
  "hdf5-1.10.8/tools/testfiles/tvldtypes3.h5", // compound with a vlen sequence member
  "PyTables/tables/tests/test_ref_array2.mat", // '#refs#' group names
  "h5py/h5py/tests/data_files/vlen_string_s390x.h5", // big-endian machine file
  "matnwb/_history/e7401f8e7d/ecephys_tutorial.nwb",
  "hdmf/_history/ea408da6c2/test_DynamicTable.h5",
];

const EXTERNAL_PASS = ["generated-nwb/ecephys.nwb", "synthetic/chunk_index_latest.h5", "synthetic/paged.h5", "h5serv/test/test_files/dset_gzip.h5"];

/** Datasets h5wasm cannot serve as ground truth, with the reason. */
const SKIP: Record<string, string> = {
  "hdf5-1.10.8/test/le_data.h5": "nbit-packed floats: h5wasm's raw file-type read returns the packed bits",
};

function sampleFiles(): string[] {
  const root = requireCorpus();
  const found = execFileSync("find", ["generated-nwb", "pynwb", "synthetic", "-type", "f", "(", "-name", "*.nwb", "-o", "-name", "*.h5", ")"], {
    cwd: root,
    encoding: "utf8",
  })
    .trim()
    .split("\n")
    .filter(Boolean)
    .sort();
  return [...found, ...EXTRA_FILES];
}

interface Tally {
  files: number;
  notIndexed: string[];
  datasets: number;
  selections: number;
  unsupported: number;
  /** Datasets read through an _EXTERNAL_ARRAY_LINK. */
  external: number;
  problems: string[];
}

async function checkFile(rel: string, tally: Tally, opts: { chunksThreshold?: number; seed: number }): Promise<void> {
  const abs = corpusFile(rel);
  let doc;
  try {
    doc = await indexLocalFile(abs, { url: abs, ...(opts.chunksThreshold !== undefined ? { chunksThreshold: opts.chunksThreshold } : {}) });
  } catch (e) {
    // files the LINDI reference cannot express (external links, bitshuffle, …) are out of scope
    if (e instanceof LindiConversionError) {
      tally.notIndexed.push(rel);
      return;
    }
    throw e;
  }
  tally.files++;
  const rangeReader = fileRangeReader();
  const openSource = sourceOpener({ localFiles: true });
  const cache = new ChunkCache({ maxBytes: 64 * 1024 * 1024 });
  const externalCache = new ExternalDatasetCache();
  await withH5File(abs, async (f, M) => {
    const rnd = seededRandom(opts.seed);
    for (const p of listDatasetPaths(f, M)) {
      tally.datasets++;
      if (datasetInfo(doc, p).externalLink) tally.external++;
      const shape = (M.get_dataset_metadata(f.file_id, p).shape ?? []) as number[];
      for (const text of ["", randomSelection(shape, rnd), randomSelection(shape, rnd)]) {
        let res;
        try {
          res = await readSlice(doc, p, text, { rangeReader, openSource, cache, externalCache, maxElements: 4e6 });
        } catch (e) {
          if (e instanceof UnsupportedDtypeError && /f16/.test(e.dtype)) {
            tally.unsupported++;
            break;
          }
          tally.problems.push(`${rel} ${p} [${text}]: ${e instanceof Error ? e.stack : String(e)}`);
          break;
        }
        tally.selections++;
        const probs = compareWithH5(f, M, p, res, parseSelection(text, shape));
        if (probs.length > 0) {
          tally.problems.push(`${rel} ${p} [${text}] (${res.dtype}): ${probs.slice(0, 3).join("; ")}`);
          break;
        }
      }
    }
  });
  externalCache.clear();
}

function newTally(): Tally {
  return { files: 0, notIndexed: [], datasets: 0, selections: 0, unsupported: 0, external: 0, problems: [] };
}

test("readSlice equals h5wasm on the corpus sample (full reads and random selections)", { timeout: 180_000 }, async () => {
  const tally = newTally();
  const files = sampleFiles().filter((f) => !(f in SKIP));
  for (const rel of files) await checkFile(rel, tally, { seed: 42 });
  assert.deepEqual(tally.problems, []);
  // the sample must be large: every NWB file of generated-nwb/ and pynwb/ that indexes, most synthetic files
  assert.ok(tally.files >= 55, `only ${tally.files} files indexed (not indexed: ${tally.notIndexed.join(", ")})`);
  assert.ok(tally.datasets >= 2500, `only ${tally.datasets} datasets`);
  assert.ok(tally.selections >= 3 * 2500, `only ${tally.selections} selections`);
  assert.ok(tally.external >= 5, `only ${tally.external} external array links in the sample`);
  for (const rel of EXTRA_FILES) assert.ok(!tally.notIndexed.includes(rel), `${rel} no longer indexes`);
});

test("_EXTERNAL_ARRAY_LINK datasets (chunksThreshold 0) read from the HDF5 file equal h5wasm", { timeout: 60_000 }, async () => {
  const tally = newTally();
  for (const rel of EXTERNAL_PASS) await checkFile(rel, tally, { chunksThreshold: 0, seed: 7 });
  assert.deepEqual(tally.problems, []);
  assert.equal(tally.files, EXTERNAL_PASS.length);
  assert.ok(tally.selections > 100);
  assert.ok(tally.external >= 12, `only ${tally.external} datasets went through external links`);
});
