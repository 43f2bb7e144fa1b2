/**
 * CoalescingByteSource: reads of one turn merged where close, each caller
 * getting exactly its bytes.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { CoalescingByteSource } from "../src/hdf5/coalescingSource.ts";
import { recordingSource } from "./support/recordingSource.ts";


const bytes = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 7 + (i >> 9)) & 0xff);

test("coalescing: reads of one turn closer than the gap become one read; far ones stay apart", async () => {
  const src = recordingSource(bytes);
  const c = new CoalescingByteSource(src, { gap: 100 });
  const asks: [number, number][] = [
    [5000, 50],
    [1000, 100],
    [1150, 10], // 50 bytes after the previous one: merged
    [1100, 20], // overlapping the merged run
    [9000, 10], // far: its own read
  ];
  const got = await Promise.all(asks.map(([o, l]) => c.read(o, l)));
  asks.forEach(([o, l], i) => assert.deepEqual(got[i], bytes.subarray(o, o + l)));
  assert.deepEqual(src.reads, [
    [1000, 160],
    [5000, 50],
    [9000, 10],
  ]);
  assert.deepEqual(c.stats, { reads: 5, sourceReads: 3 });
  // merged callers own their bytes
  got[1]![0] ^= 0xff;
  assert.equal(got[3]![0], bytes[1100]);
  // a later turn is a new batch
  await c.read(1000, 10);
  assert.deepEqual(src.reads.at(-1), [1000, 10]);
});

test("coalescing: the merged size is bounded; EOF gives short reads; an error fails its group only", async () => {
  const src = recordingSource(bytes, { fail: (o) => o === 50_000 });
  const c = new CoalescingByteSource(src, { gap: 1000, maxBytes: 300 });
  const [a, b] = await Promise.all([c.read(0, 200), c.read(250, 200)]);
  assert.equal(a.length, 200);
  assert.equal(b.length, 200);
  assert.equal(src.reads.length, 2, "200 + 200 with a gap is over maxBytes: two reads");
  const [end1, end2] = await Promise.all([c.read(99_900, 200), c.read(99_950, 10)]);
  assert.deepEqual(end1, bytes.subarray(99_900));
  assert.deepEqual(end2, bytes.subarray(99_950, 99_960));
  const results = await Promise.allSettled([c.read(50_000, 10), c.read(50_020, 10), c.read(70_000, 10)]);
  assert.equal(results[0]!.status, "rejected");
  assert.equal(results[1]!.status, "rejected", "merged with the failing read");
  assert.equal(results[2]!.status, "fulfilled");
});
