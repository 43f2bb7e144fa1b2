/**
 * Pieces of remote indexing on their own: the worker's synchronous block
 * cache, the main-side block store, what the prefetcher saves, and why phase
 * B runs in the worker (phase A's model does not survive structured clone).
 */
import assert from "node:assert/strict";
import path from "node:path";
import { test } from "node:test";
import type { ByteSource } from "../src/hdf5/byteSource.ts";
import { localFileReader } from "../src/hdf5/h5wasmRuntime.ts";
import type { H5Value } from "../src/hdf5/values.ts";
import { createIndexBuilder } from "../src/index/builder.ts";
import { SyncBlockCache } from "../src/index/remoteBlockCache.ts";
import { BlockStore } from "../src/index/remoteBlockStore.ts";
import { RangeCache } from "../src/index/remoteRangeCache.ts";
import { createBridgeBuffer, extraOverhead, SyncBridgeClient, SyncBridgeServer, type SyncRequestMessage } from "../src/index/syncBridge.ts";
import { walkHdf5 } from "../src/lindi/indexHdf5.ts";
import { PyFloat } from "../src/lindi/pythonJson.ts";
import { corpusDir } from "./support/corpus.ts";
import { recordingSource } from "./support/recordingSource.ts";
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
      return { data: out, extras: [] };
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
const countingSource = (bytes: Uint8Array) => recordingSource(bytes, { delayMs: 5 });

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

test("bridge: an answer carries unrequested extras after the requested bytes", () => {
  const sab = createBridgeBuffer(4096);
  const server = new SyncBridgeServer(sab);
  const extraA = pattern(1000);
  const extraB = pattern(7).map((x) => x ^ 0x55);
  // the port answers at once, as the main thread would: the client then finds the answer without blocking
  const port = {
    postMessage(m: SyncRequestMessage) {
      server.respond(m.seq, [Uint8Array.of(1, 2, 3), Uint8Array.of(4, 5)], [
        { tag: 17, bytes: extraA },
        { tag: 3, bytes: extraB },
      ]);
    },
  };
  const client = new SyncBridgeClient(sab, port, 1000);
  const a = client.request([0, 5], false);
  assert.deepEqual([...a.data], [1, 2, 3, 4, 5]);
  assert.deepEqual(
    a.extras.map((x) => x.tag),
    [17, 3],
  );
  assert.deepEqual(a.extras[0]!.bytes, extraA);
  assert.deepEqual(a.extras[1]!.bytes, extraB);
  // what fits is what the capacity minus the overhead allows
  assert.throws(() => server.respond(2, [new Uint8Array(4096 - extraOverhead(1))], [{ tag: 1, bytes: new Uint8Array(2) }]), /capacity/);
});

test("block cache: pushed blocks are cached and their first reads reported (in batches and before each request)", () => {
  const bytes = pattern(400 * 1024);
  const bs = 1024;
  const used: number[][] = [];
  let push: number[] = [];
  const cache = new SyncBlockCache(
    { size: bytes.length, blockSize: bs, maxBytes: 1 << 20, maxRequestBytes: 1 << 20, onPushedUsed: (b) => used.push([...b]) },
    (runs) => {
      const data = bytes.slice(runs[0]!, runs[1]!);
      const extras = push.map((b) => ({ tag: b, bytes: bytes.subarray(b * bs, (b + 1) * bs) }));
      push = [];
      return { data, extras };
    },
  );
  push = Array.from({ length: 100 }, (_, i) => 10 + i); // blocks 10..109 come along with block 0
  const t = new Uint8Array(10);
  cache.read(t, 0);
  assert.equal(cache.stats.requests, 1);
  assert.equal(cache.stats.blocksPushed, 100);
  for (let b = 10; b < 110; b++) {
    cache.read(t, b * bs + 5);
    assert.deepEqual(t, bytes.subarray(b * bs + 5, b * bs + 15));
  }
  assert.equal(cache.stats.requests, 1, "pushed blocks answer reads without a request");
  assert.equal(cache.stats.pushedUsed, 100);
  assert.deepEqual(used, [Array.from({ length: 64 }, (_, i) => 10 + i)], "reported in a batch of 64");
  cache.read(t, 10 * bs); // a second read of a pushed block is not reported again
  cache.read(t, 200 * bs); // a miss: the rest is reported before the request
  assert.deepEqual(used[1], Array.from({ length: 36 }, (_, i) => 74 + i));
  assert.equal(cache.stats.requests, 2);
  // a pushed block of the wrong size or one already cached is ignored
  push = [300, 10];
  cache.read(t, 201 * bs);
  assert.equal(cache.stats.blocksPushed, 101);
});

test("block store: pushable blocks are the arrived prefetched ones; they stay in the window until used", async () => {
  const bytes = pattern(100_000);
  const store = new BlockStore(countingSource(bytes), 1000, 1_000_000);
  await store.prefetch(0, 5000).done; // blocks 0..4
  await store.demand(1, 1); // asked for: not pushable
  assert.equal(store.prefetchOutstanding, 4000);
  const first = store.takePushable(2 * 1000 + 2 * 8, 8);
  assert.deepEqual(
    first.map((x) => x.tag),
    [0, 2],
    "as many as fit, oldest first",
  );
  assert.deepEqual(first[1]!.bytes, bytes.subarray(2000, 3000));
  assert.deepEqual(
    store.takePushable(1 << 20, 8).map((x) => x.tag),
    [3, 4],
  );
  assert.deepEqual(store.takePushable(1 << 20, 8), [], "each block is pushed once");
  assert.equal(store.prefetchOutstanding, 4000, "pushed is not used yet");
  store.markUsed([0, 2, 3]);
  assert.equal(store.prefetchOutstanding, 1000);
  store.markUsed([0, 99]); // twice, or unknown: no effect
  assert.equal(store.prefetchOutstanding, 1000);
});

test("range cache: ranges read ahead are taken once by phase B; bounded; failures not kept", async () => {
  const bytes = pattern(10_000);
  const src = countingSource(bytes);
  const ranges = new RangeCache(src, 3000);
  assert.deepEqual(await ranges.read(100, 2000), bytes.subarray(100, 2100));
  assert.equal(ranges.read(5000, 1001), null, "over the bound: nothing is fetched");
  assert.equal(src.reads.length, 1);
  const t = ranges.take(100, 1500);
  assert.ok(t);
  assert.deepEqual(await t, bytes.subarray(100, 1600));
  assert.equal(ranges.take(100, 10), null, "taken once");
  assert.ok(ranges.read(5000, 1001), "taking freed the room");
  assert.equal(ranges.take(5000, 2000), null, "a longer read than what is held is not answered");
  let fail = true;
  const flaky = new RangeCache(
    {
      size: bytes.length,
      async read(o, l) {
        if (fail) throw new Error("boom");
        return bytes.subarray(o, o + l);
      },
    },
    3000,
  );
  await assert.rejects(flaky.read(0, 10)!, /boom/);
  assert.equal(flaky.take(0, 10), null, "a failed range is dropped");
  fail = false;
  assert.deepEqual(await flaky.read(0, 10), bytes.subarray(0, 10));
});

test("prefetching cuts phase A's sequential round trips (numbers printed)", async () => {
  const origin = await startRangeOrigin({ root: corpusDir, latencyMs: 10 });
  const rel = "generated-nwb/ecephys.nwb";
  const results: Record<string, { syncRequests: number; roundTrips: number; demandFetches: number; blocksPushed: number }> = {};
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
      `${on.roundTrips} with (${on.demandFetches} not prefetched at all; ${on.syncRequests} blocking requests, ${on.blocksPushed} blocks pushed)\n`,
  );
  assert.equal(off.roundTrips, off.syncRequests, "without prefetch every blocking request is a round trip");
  assert.ok(on.demandFetches * 2 <= off.demandFetches, `prefetch left ${on.demandFetches} of ${off.demandFetches} fetches`);
  // prefetched blocks come along with answers (how many depends on timing: bench/index-remote measures it)
  assert.ok(on.blocksPushed > 0, "prefetched blocks were pushed to the worker");
  assert.ok(on.syncRequests <= off.syncRequests, `${on.syncRequests} blocking requests with prefetch, ${off.syncRequests} without`);
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
