/**
 * Pieces of remote indexing on their own: the worker's synchronous block
 * cache, the main-side block store, what the prefetcher saves, and why phase
 * B runs in the worker (phase A's model does not survive structured clone).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import { MemoryByteSource, type ByteSource } from "../src/hdf5/byteSource.ts";
import { localFileReader } from "../src/hdf5/h5wasmRuntime.ts";
import type { H5Value } from "../src/hdf5/values.ts";
import { createIndexBuilder } from "../src/index/builder.ts";
import { SyncBlockCache } from "../src/index/remoteBlockCache.ts";
import { BlockStore } from "../src/index/remoteBlockStore.ts";
import { walkHdf5 } from "../src/lindi/indexHdf5.ts";
import { PyFloat } from "../src/lindi/pythonJson.ts";
import { corpusDir } from "./support/corpus.ts";
import { startRangeOrigin } from "./support/rangeOrigin.ts";

function pattern(n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8)) & 0xff;
  return b;
}

/** A cache over `bytes` whose fetcher records the runs asked for. */
function cacheOver(bytes: Uint8Array, opts: { blockSize: number; maxBytes: number; maxRequestBytes?: number }) {
  const requests: { runs: number[]; exact: boolean }[] = [];
  const cache = new SyncBlockCache(
    { size: bytes.length, blockSize: opts.blockSize, maxBytes: opts.maxBytes, maxRequestBytes: opts.maxRequestBytes ?? 1 << 20 },
    (runs, exact) => {
      requests.push({ runs: [...runs], exact });
      const parts: Uint8Array[] = [];
      for (let i = 0; i < runs.length; i += 2) parts.push(bytes.subarray(runs[i]!, runs[i + 1]!));
      const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
      let at = 0;
      for (const p of parts) {
        out.set(p, at);
        at += p.length;
      }
      return out;
    },
  );
  return { cache, requests };
}

test("block cache: reads across blocks, at EOF, hits without requests", () => {
  const bytes = pattern(10_000);
  const { cache, requests } = cacheOver(bytes, { blockSize: 1024, maxBytes: 64 * 1024 });
  const a = new Uint8Array(3000);
  assert.equal(cache.read(a, 500), 3000);
  assert.deepEqual(a, bytes.subarray(500, 3500));
  // blocks 0..3 fetched as one run, one request
  assert.deepEqual(requests, [{ runs: [0, 4096], exact: false }]);
  const b = new Uint8Array(100);
  assert.equal(cache.read(b, 1000), 100);
  assert.equal(requests.length, 1, "a read inside cached blocks makes no request");
  const tail = new Uint8Array(500);
  assert.equal(cache.read(tail, 9800), 200, "short at EOF");
  assert.deepEqual(tail.subarray(0, 200), bytes.subarray(9800));
  assert.deepEqual(requests[1], { runs: [9216, 10_000], exact: false }, "the last block is short");
  assert.equal(cache.read(new Uint8Array(10), 10_000), 0);
  assert.equal(cache.stats.requests, 2);
  assert.deepEqual(cache.peek(600, 100), bytes.subarray(600, 700));
  assert.equal(cache.peek(5000, 10), null, "peek never fetches");
});

test("block cache: only the missing blocks of a read are fetched, consecutive ones as one run", () => {
  const bytes = pattern(20_000);
  const { cache, requests } = cacheOver(bytes, { blockSize: 1000, maxBytes: 64 * 1000 });
  cache.read(new Uint8Array(10), 2500); // block 2
  cache.read(new Uint8Array(10), 5500); // block 5
  requests.length = 0;
  const out = new Uint8Array(6000);
  cache.read(out, 1000); // blocks 1..6: 2 and 5 cached
  assert.deepEqual(out, bytes.subarray(1000, 7000));
  assert.deepEqual(requests, [{ runs: [1000, 2000, 3000, 5000, 6000, 7000], exact: false }]);
});

test("block cache: bounded by maxBytes (LRU), large reads bypass it", () => {
  const bytes = pattern(200_000);
  const { cache, requests } = cacheOver(bytes, { blockSize: 1000, maxBytes: 8000 });
  for (let b = 0; b < 50; b++) cache.read(new Uint8Array(10), b * 1000);
  assert.ok(cache.bytes <= 8000, `holds ${cache.bytes}`);
  assert.ok(cache.stats.evictions >= 42);
  // the most recent blocks are still there
  requests.length = 0;
  cache.read(new Uint8Array(10), 49_000);
  assert.equal(requests.length, 0);
  // a read larger than the bypass threshold is fetched exactly, not cached
  const big = new Uint8Array(50_000);
  cache.read(big, 100_123);
  assert.deepEqual(big, bytes.subarray(100_123, 150_123));
  assert.deepEqual(requests, [{ runs: [100_123, 150_123], exact: true }]);
  assert.ok(cache.bytes <= 8000);
  assert.equal(cache.stats.bypassReads, 1);
});

test("block cache: requests respect the transfer area", () => {
  const bytes = pattern(50_000);
  const { cache, requests } = cacheOver(bytes, { blockSize: 1000, maxBytes: 100_000, maxRequestBytes: 4000 });
  const out = new Uint8Array(10_000);
  cache.read(out, 0);
  assert.deepEqual(out, bytes.subarray(0, 10_000));
  assert.ok(requests.every((r) => r.runs[1]! - r.runs[0]! <= 4000));
  assert.equal(requests.length, 3);
});

/** A ByteSource counting reads, with a delay so that fetches overlap. */
function countingSource(bytes: Uint8Array): ByteSource & { reads: [number, number][] } {
  const inner = new MemoryByteSource(bytes);
  const reads: [number, number][] = [];
  return {
    size: bytes.length,
    reads,
    async read(offset, length) {
      reads.push([offset, length]);
      await new Promise((r) => setTimeout(r, 5));
      return inner.read(offset, length);
    },
  };
}

test("block store: consecutive missing blocks are one request; a fetch in flight is shared", async () => {
  const bytes = pattern(100_000);
  const src = countingSource(bytes);
  const store = new BlockStore(src, 1000, 1_000_000);
  const pf = store.prefetch(10_500, 3000); // blocks 10..13
  assert.equal(pf.newBytes, 4000);
  const d = await store.demand(11, 15); // 11..13 in flight, 14..15 missing
  assert.equal(d.fetched, true);
  assert.equal(d.awaitedInFlight, true);
  assert.deepEqual(src.reads, [
    [10_000, 4000],
    [14_000, 2000],
  ]);
  const joined = new Uint8Array(d.parts.reduce((a, p) => a + p.length, 0));
  let at = 0;
  for (const p of d.parts) {
    joined.set(p, at);
    at += p.length;
  }
  assert.deepEqual(joined, bytes.subarray(11_000, 16_000));
  assert.equal(store.stats.prefetchedBlocksUsed, 3);
  assert.equal(store.prefetchOutstanding, 1000, "block 10 was prefetched and not used yet");
  assert.deepEqual(await store.readRange(10_900, 200), bytes.subarray(10_900, 11_100));
  assert.deepEqual(store.peek(14_000, 10), bytes.subarray(14_000, 14_010));
  assert.equal(store.peek(50_000, 10), null);
  const again = await store.demand(12, 12);
  assert.equal(again.fetched, false);
  assert.equal(again.awaitedInFlight, false);
});

test("block store: a failed fetch is forgotten (the next request tries again)", async () => {
  let fail = true;
  const bytes = pattern(10_000);
  const src: ByteSource = {
    size: bytes.length,
    async read(offset, length) {
      if (fail) throw new Error("boom");
      return bytes.subarray(offset, offset + length);
    },
  };
  const store = new BlockStore(src, 1000, 1_000_000);
  await assert.rejects(store.demand(0, 1), /boom/);
  fail = false;
  const d = await store.demand(0, 1);
  assert.equal(d.fetched, true);
  assert.deepEqual(d.parts[0], bytes.subarray(0, 1000));
});

test("prefetching cuts phase A's sequential round trips (numbers printed)", async () => {
  const origin = await startRangeOrigin({ root: corpusDir, latencyMs: 10 });
  const rel = "generated-nwb/ecephys.nwb";
  const results: Record<string, { syncRequests: number; roundTrips: number; demandFetches: number }> = {};
  try {
    for (const [name, prefetch] of [
      ["off", false],
      ["on", {}],
    ] as const) {
      const builder = createIndexBuilder({ poolSize: 1, blockSize: 16 * 1024, prefetch });
      try {
        const info = await builder.probe(origin.url(rel));
        const r = await builder.build(info, { chunksThreshold: 1000, splitBytes: 20_000_000 });
        results[name] = r.stats.session;
      } finally {
        await builder.close();
      }
    }
  } finally {
    await origin.close();
  }
  const off = results.off!;
  const on = results.on!;
  process.stdout.write(
    `${rel} at 16 KiB blocks: ${off.syncRequests} blocking requests; round trips ${off.roundTrips} without prefetch, ` +
      `${on.roundTrips} with (${on.demandFetches} not prefetched at all)\n`,
  );
  assert.equal(off.roundTrips, off.syncRequests, "without prefetch every blocking request is a round trip");
  assert.ok(on.demandFetches * 2 <= off.demandFetches, `prefetch left ${on.demandFetches} of ${off.demandFetches} fetches`);
});

test("phase A's model does not survive structured clone (why phase B and emit run in the worker)", async () => {
  const file = path.join(corpusDir, "generated-nwb/ecephys.nwb");
  const local = localFileReader(file);
  let model;
  try {
    model = await walkHdf5(local.size, local.reader);
  } finally {
    local.close();
  }
  const floats = (v: unknown): number => {
    if (v instanceof PyFloat) return 1;
    if (Array.isArray(v)) return v.reduce((a: number, x) => a + floats(x), 0);
    return 0;
  };
  const count = (m: typeof model) =>
    m.nodes.reduce((a, n) => a + ("attrs" in n ? n.attrs.reduce((b, at) => b + floats(at.elements as H5Value[] | null), 0) : 0), 0);
  const before = count(model);
  assert.ok(before > 0, "the file has float attributes");
  assert.equal(count(structuredClone(model)), 0, "PyFloat instances become plain objects");
});
