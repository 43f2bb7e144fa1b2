/**
 * The data endpoints' range reader (src/service/data/rangeReader.ts) against
 * the loopback origin: merged requests hand each range over as soon as its
 * bytes are in (so /slice decodes while the rest is on the wire), once per
 * range even when a broken-off body is fetched again.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { HttpClient } from "../src/hdf5/httpByteSource.ts";
import { directRangeReader } from "../src/service/data/rangeReader.ts";
import { corpusFile, requireCorpus } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";

const REL = "synthetic/chunk_index_latest.h5";
let origin: RangeOrigin;
let client: HttpClient;
let file: Uint8Array;

before(async () => {
  origin = await startRangeOrigin({ root: requireCorpus() });
  client = new HttpClient({ retryBaseDelayMs: 1, retryMaxDelayMs: 10 });
  file = new Uint8Array(readFileSync(corpusFile(REL)));
});

after(async () => {
  await client.close();
  await origin.close();
});

// three ranges one merged request covers (gaps under 16 KiB), asked out of order
const RANGES = [
  { offset: 9000, length: 3000 },
  { offset: 0, length: 3000 },
  { offset: 3000, length: 4000 },
];

function expected(i: number): Uint8Array {
  const r = RANGES[i]!;
  return file.subarray(r.offset, r.offset + r.length);
}

test("many() hands over each range while the merged body is still arriving", async () => {
  assert.ok(file.byteLength > 12_000);
  // the body comes 2,000 bytes every 30 ms: 6 pieces for the 12,000-byte request
  origin.setFaults({ drip: { bytes: 2000, intervalMs: 30 } });
  origin.resetStats();
  const reader = directRangeReader(client);
  const seen: { i: number; originBytes: number }[] = [];
  const url = origin.url(REL);
  const all = await reader.many!(url, RANGES, undefined, (i, bytes) => {
    assert.deepEqual(bytes, expected(i), `range ${i}`);
    seen.push({ i, originBytes: origin.stats.bytes });
  });
  assert.equal(origin.stats.gets, 1, "one merged request");
  assert.deepEqual(
    seen.map((s) => s.i),
    [1, 2, 0],
    "each range once, in the order its last byte arrived",
  );
  assert.ok(seen[0]!.originBytes < 12_000, `the first range was handed over after ${seen[0]!.originBytes} of 12,000 bytes were sent`);
  RANGES.forEach((_, i) => assert.deepEqual(all[i], expected(i)));
});

test("a body broken off midway is fetched again; ranges already handed over are not handed over twice", async () => {
  origin.setFaults({ resetMidBody: { count: 1, afterFraction: 0.5 } });
  origin.resetStats();
  const reader = directRangeReader(client);
  const calls = new Map<number, number>();
  const all = await reader.many!(origin.url(REL), RANGES, undefined, (i, bytes) => {
    assert.deepEqual(bytes, expected(i));
    calls.set(i, (calls.get(i) ?? 0) + 1);
  });
  assert.equal(origin.stats.faults.resetMidBody, 1);
  assert.equal(origin.stats.gets, 2, "the request was made again");
  assert.deepEqual([...calls.entries()].sort(), [
    [0, 1],
    [1, 1],
    [2, 1],
  ]);
  RANGES.forEach((_, i) => assert.deepEqual(all[i], expected(i)));
});

test("an error thrown by onRange reaches the caller as is (not retried as a broken body)", async () => {
  origin.setFaults({});
  origin.resetStats();
  await assert.rejects(
    directRangeReader(client).many!(origin.url(REL), RANGES, undefined, () => {
      throw new Error("caller bug");
    }),
    /caller bug/,
  );
  assert.equal(origin.stats.gets, 1);
});

test("without onRange, many() still returns every range", async () => {
  origin.setFaults({});
  const all = await directRangeReader(client).many!(origin.url(REL), RANGES);
  RANGES.forEach((_, i) => assert.deepEqual(all[i], expected(i)));
});
