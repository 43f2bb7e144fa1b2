/**
 * The decoded chunk cache of slice reads: warm reads decode nothing, a new
 * document version never sees another's chunks, results never alias cached
 * chunks, and the cache stays within its bound.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { DecodedChunkCache } from "../src/slices/decodedChunks.ts";
import { readSlice } from "../src/slices/readSlice.ts";
import { fileRangeReader, type RangeReader } from "../src/slices/refStore.ts";
import { corpusFile } from "./support/corpus.ts";

const REL = "generated-nwb/ecephys.nwb";
const DATA = "/acquisition/ElectricalSeries/data";

/** A file range reader that counts the ranges it reads. */
function countingReader(): RangeReader & { reads: number } {
  const inner = fileRangeReader();
  const r = (async (url: string, offset: number, length: number) => {
    r.reads++;
    return inner(url, offset, length);
  }) as RangeReader & { reads: number };
  r.reads = 0;
  return r;
}

test("decoded chunks: a warm read fetches and decodes nothing and returns equal, unaliased values", async () => {
  const doc = await indexLocalFile(corpusFile(REL), { url: corpusFile(REL) });
  const decodedCache = new DecodedChunkCache({ maxBytes: 64 * 1024 * 1024 });
  const rangeReader = countingReader();
  const opts = { rangeReader, cache: null, decodedCache };
  const first = await readSlice(doc, DATA, "0:5000", opts);
  const reads = rangeReader.reads;
  assert.ok(reads > 0);
  assert.ok(decodedCache.stats.misses > 0 && decodedCache.size > 0);
  const expected = Int16Array.from(first.data as Int16Array);
  (first.data as Int16Array).fill(7); // the caller owns its result
  const hits = decodedCache.stats.hits;
  const second = await readSlice(doc, DATA, "0:5000", opts);
  assert.equal(rangeReader.reads, reads, "no byte was read again (and no chunk cache was in use)");
  assert.ok(decodedCache.stats.hits > hits);
  assert.deepEqual(second.data, expected, "the cached chunks were not changed through the first result");
});

test("decoded chunks: another document (a new index version) does not see the first one's chunks", async () => {
  const decodedCache = new DecodedChunkCache({ maxBytes: 64 * 1024 * 1024 });
  const a = await indexLocalFile(corpusFile(REL), { url: corpusFile(REL) });
  const b = await indexLocalFile(corpusFile(REL), { url: corpusFile(REL) });
  const rangeReader = countingReader();
  await readSlice(a, DATA, "0:100", { rangeReader, cache: null, decodedCache });
  const afterA = rangeReader.reads;
  await readSlice(b, DATA, "0:100", { rangeReader, cache: null, decodedCache });
  assert.ok(rangeReader.reads > afterA, "the second document's chunks were read from its own refs");
});

test("decoded chunks: the cache stays within its bound; chunks over an eighth of it are not kept", async () => {
  const doc = await indexLocalFile(corpusFile(REL), { url: corpusFile(REL) });
  const small = new DecodedChunkCache({ maxBytes: 300_000 });
  await readSlice(doc, DATA, "", { rangeReader: fileRangeReader(), cache: null, decodedCache: small });
  assert.ok(small.size <= 300_000, `${small.size} bytes held`);
  const tiny = new DecodedChunkCache({ maxBytes: 1000 });
  await readSlice(doc, DATA, "0:10", { rangeReader: fileRangeReader(), cache: null, decodedCache: tiny });
  assert.equal(tiny.size, 0);
});

test("decoded chunks: object chunks are charged by their strings' lengths", () => {
  const cache = new DecodedChunkCache({ maxBytes: 800_000 }); // chunks up to 100,000 bytes are kept
  const chunk = (data: unknown[]) => ({ data, shape: [data.length], stride: [1] }) as never;
  const refs = {};
  cache.set(cache.keyOf(refs, "a/0"), chunk(Array.from({ length: 10 }, () => "abcde")));
  assert.equal(cache.size, 10 * (16 + 2 * 5));
  // 10 strings of 10,000 characters: 200,160 bytes, more than an eighth of the bound: not kept
  cache.set(cache.keyOf(refs, "b/0"), chunk(Array.from({ length: 10 }, () => "x".repeat(10_000))));
  assert.equal(cache.get(cache.keyOf(refs, "b/0")), undefined);
  assert.equal(cache.size, 260);
  // compound rows count more than a pointer each
  cache.set(cache.keyOf(refs, "c/0"), chunk([{ a: 1 }, { a: 2 }]));
  assert.equal(cache.size, 260 + 2 * (16 + 64));
});
