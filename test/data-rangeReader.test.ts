/**
 * The data endpoints' range reader (src/service/data/rangeReader.ts) against
 * the loopback origin: merged requests hand each range over as soon as its
 * bytes are in (so /slice decodes while the rest is on the wire), once per
 * range even when a broken-off body is fetched again; and the splitter that
 * cuts a merged body into the ranges' own buffers.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, test } from "node:test";
import { HttpClient } from "../src/hdf5/httpByteSource.ts";
import { directRangeReader } from "../src/service/data/rangeReader.ts";
import { RangeSplitter, type SplitRange } from "../src/service/data/rangeSplitter.ts";
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

test("RangeSplitter: gaps, overlaps, duplicates and pieces across ranges; each range once, in the order it completes", () => {
  const body = Uint8Array.from({ length: 100 }, (_, i) => i);
  const base = 1000;
  // sorted by start; [1010,1060) overlaps [1020,1030) and [1050,1070); [1080,1090) twice; an empty one
  const ranges: SplitRange[] = [
    { index: 0, start: 1000, end: 1005 },
    { index: 1, start: 1010, end: 1060 },
    { index: 2, start: 1020, end: 1030 },
    { index: 3, start: 1050, end: 1070 },
    { index: 4, start: 1075, end: 1075 },
    { index: 5, start: 1080, end: 1090 },
    { index: 6, start: 1080, end: 1090 },
    { index: 7, start: 1095, end: 1100 },
  ];
  const order: number[] = [];
  const got = new Map<number, Uint8Array>();
  const splitter = new RangeSplitter(base, ranges, (r, bytes) => {
    assert.ok(!got.has(r.index), `range ${r.index} handed over twice`);
    order.push(r.index);
    got.set(r.index, bytes);
  });
  for (const [from, to] of [
    [0, 7],
    [7, 25],
    [25, 55],
    [55, 77],
    [77, 100],
  ] as const) {
    splitter.write(body.subarray(from, to), from);
  }
  assert.deepEqual(order, [0, 2, 1, 3, 4, 5, 6, 7]);
  ranges.forEach((r, k) => {
    const want = body.subarray(r.start - base, r.end - base);
    assert.deepEqual(got.get(r.index), want, `range ${r.index}`);
    assert.equal(splitter.bytes(k), got.get(r.index));
    assert.equal(splitter.bytes(k).buffer.byteLength, r.end - r.start, "a buffer of its own, exactly the range");
  });
});

test("RangeSplitter: a body started again leaves the ranges already handed over alone", () => {
  const ranges: SplitRange[] = [
    { index: 0, start: 0, end: 4 },
    { index: 1, start: 4, end: 8 },
  ];
  const calls: number[] = [];
  const splitter = new RangeSplitter(0, ranges, (r) => calls.push(r.index));
  splitter.write(Uint8Array.from([1, 2, 3, 4, 5, 6]), 0); // breaks off after 6 bytes
  const first = splitter.bytes(0);
  // the retry sends other bytes where range 0 was (they must not land in the handed-over buffer)
  splitter.write(Uint8Array.from([9, 9, 9, 9, 5, 6, 7, 8]), 0);
  assert.deepEqual(calls, [0, 1]);
  assert.deepEqual([...first], [1, 2, 3, 4]);
  assert.deepEqual([...splitter.bytes(1)], [5, 6, 7, 8]);
});
