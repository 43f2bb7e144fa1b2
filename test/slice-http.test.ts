/**
 * Slices through HTTP: refs point at a loopback range origin serving the
 * corpus; bytes come through the project's HttpClient (httpRangeReader) and
 * the shared chunk cache; external array links open the HDF5 file over HTTP.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { HttpClient } from "../src/hdf5/httpByteSource.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { locateChunk } from "../src/slices/chunkBytes.ts";
import { ExternalDatasetCache, sourceOpener } from "../src/slices/external.ts";
import { datasetInfo, readSlice } from "../src/slices/readSlice.ts";
import { ChunkCache, httpRangeReader, routingRangeReader, UnsupportedUrlError } from "../src/slices/refStore.ts";
import { parseSelection } from "../src/slices/selection.ts";
import { corpusFile, listDatasetPaths, requireCorpus, withH5File } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { compareWithH5, randomSelection, seededRandom } from "./support/sliceCompare.ts";

let origin: RangeOrigin;
let client: HttpClient;

before(async () => {
  origin = await startRangeOrigin({ root: requireCorpus() });
  client = new HttpClient({ retryBaseDelayMs: 1, retryMaxDelayMs: 10 });
});

after(async () => {
  await client.close();
  await origin.close();
});

async function compareAll(rel: string, opts: { chunksThreshold?: number }, readOpts: Parameters<typeof readSlice>[3]): Promise<{ datasets: number; external: number }> {
  const doc = await indexLocalFile(corpusFile(rel), { url: origin.url(rel), ...opts });
  let datasets = 0;
  let external = 0;
  await withH5File(corpusFile(rel), async (f, M) => {
    const rnd = seededRandom(3);
    for (const p of listDatasetPaths(f, M)) {
      datasets++;
      if (datasetInfo(doc, p).externalLink) external++;
      const shape = (M.get_dataset_metadata(f.file_id, p).shape ?? []) as number[];
      for (const text of ["", randomSelection(shape, rnd)]) {
        const res = await readSlice(doc, p, text, readOpts);
        assert.deepEqual(compareWithH5(f, M, p, res, parseSelection(text, shape)), [], `${rel} ${p} [${text}]`);
      }
    }
  });
  return { datasets, external };
}

test("an NWB file read through the loopback origin equals h5wasm; the chunk cache avoids refetching", async () => {
  const rel = "generated-nwb/ecephys.nwb";
  const cache = new ChunkCache();
  const rangeReader = httpRangeReader(client);
  origin.resetStats();
  const { datasets } = await compareAll(rel, {}, { rangeReader, cache });
  assert.ok(datasets > 30);
  assert.ok(origin.stats.gets > 0, "bytes came from the origin");
  assert.ok(cache.stats.misses > 0 && cache.size > 0);

  // the same reads again: all from the cache, no request reaches the origin
  const doc = await indexLocalFile(corpusFile(rel), { url: origin.url(rel) });
  const chunked = Object.keys(doc.refs).filter((k) => Array.isArray(doc.refs[k])).map((k) => k.slice(0, k.lastIndexOf("/")));
  assert.ok(chunked.length > 0);
  origin.resetStats();
  const hits = cache.stats.hits;
  for (const p of new Set(chunked)) await readSlice(doc, p, "", { rangeReader, cache });
  assert.equal(origin.stats.requests, 0);
  assert.ok(cache.stats.hits > hits);
});

test("external array links are read over HTTP from the HDF5 file (only the chunks needed)", async () => {
  const rel = "synthetic/chunk_index_latest.h5";
  const openSource = sourceOpener({ httpClient: client });
  const externalCache = new ExternalDatasetCache();
  const { external } = await compareAll(rel, { chunksThreshold: 0 }, { rangeReader: httpRangeReader(client), openSource, externalCache, cache: new ChunkCache() });
  assert.ok(external >= 5);

  // a one-element read of a many-chunk dataset fetches (at most) one chunk of data
  const doc = await indexLocalFile(corpusFile(rel), { url: origin.url(rel), chunksThreshold: 0 });
  const big = Object.keys(doc.refs)
    .filter((k) => k.endsWith("/.zarray"))
    .map((k) => k.slice(0, -"/.zarray".length))
    .map((p) => ({ p, info: datasetInfo(doc, p) }))
    .filter((x) => x.info.externalLink && x.info.shape.length === 1 && x.info.shape[0]! > 10 * x.info.chunks[0]!)[0];
  assert.ok(big, "a chunked 1-D dataset with many chunks");
  const cache = new ChunkCache();
  await readSlice(doc, big.p, "0:1", { openSource, externalCache, cache }); // opens the dataset, lists chunks
  const before = cache.stats.misses;
  await readSlice(doc, big.p, "-1", { openSource, externalCache, cache });
  assert.equal(cache.stats.misses - before, 1, "one chunk fetched for one element");

  // a full read fetches its many chunks with few (merged) requests
  origin.resetStats();
  const full = await readSlice(doc, big.p, "", { openSource, externalCache, cache: new ChunkCache() });
  const nChunks = Math.ceil(big.info.shape[0]! / big.info.chunks[0]!);
  assert.equal(full.shape[0], big.info.shape[0]);
  assert.ok(origin.stats.requests * 10 < nChunks, `${origin.stats.requests} requests for ${nChunks} chunks`);

  // /chunk for an external link: the range in the HDF5 file
  const c = await locateChunk(doc, big.p, "0", { openSource, externalCache });
  assert.equal(c.location.kind, "range");
  assert.equal(c.location.kind === "range" && c.location.url, origin.url(rel));
  externalCache.clear();
});

test("a reader without local file access refuses local paths in refs", async () => {
  const rel = "synthetic/paged.h5";
  const doc = await indexLocalFile(corpusFile(rel), { url: corpusFile(rel) });
  const p = Object.keys(doc.refs).find((k) => Array.isArray(doc.refs[k]))!;
  const reader = routingRangeReader({ http: httpRangeReader(client) });
  await assert.rejects(readSlice(doc, p.slice(0, p.lastIndexOf("/")), "", { rangeReader: reader, cache: null }), UnsupportedUrlError);
});

test("chunk refs of one dataset are fetched with merged requests", async () => {
  const rel = "synthetic/chunk_index_latest.h5";
  // a high threshold keeps the 20 000 chunks of fixed_array_many as refs
  const doc = await indexLocalFile(corpusFile(rel), { url: origin.url(rel), chunksThreshold: 100_000 });
  const refs = Object.keys(doc.refs).filter((k) => k.startsWith("fixed_array_many/") && Array.isArray(doc.refs[k]));
  assert.ok(refs.length >= 10_000);
  origin.resetStats();
  const res = await readSlice(doc, "/fixed_array_many", "", { rangeReader: httpRangeReader(client), cache: new ChunkCache() });
  assert.equal(res.shape[0], 200_000);
  assert.ok(origin.stats.requests < 100, `${origin.stats.requests} requests for ${refs.length} chunks`);
  await withH5File(corpusFile(rel), (f, M) => {
    assert.deepEqual(compareWithH5(f, M, "/fixed_array_many", res, parseSelection("", [200_000])), []);
  });
});
