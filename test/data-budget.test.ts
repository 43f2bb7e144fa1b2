/**
 * The budget of /slice answers in progress (LINDI_SLICE_INFLIGHT_BYTES,
 * LINDI_SLICE_QUEUE_SECONDS): ByteBudget on its own, then the real server in
 * front of the loopback origin with a small budget and a slow origin.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { request } from "undici";
import { BudgetTimeoutError, ByteBudget } from "../src/service/data/byteBudget.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { call, testConfig } from "./support/service.ts";

test("ByteBudget: shares up to the total, first come first served, capped shares, bounded waits", async () => {
  const b = new ByteBudget(100);
  const r1 = await b.acquire(60, 1000);
  const order: string[] = [];
  const p2 = b.acquire(60, 1000).then((r) => (order.push("second"), r));
  const p3 = b.acquire(10, 1000).then((r) => (order.push("third"), r)); // fits, but may not overtake
  await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(order, []);
  assert.equal(b.waiting, 2);
  r1();
  r1(); // twice: no effect
  const [r2, r3] = await Promise.all([p2, p3]);
  assert.deepEqual(order, ["second", "third"]);
  assert.equal(b.inUse, 70);
  r2();
  r3();
  assert.equal(b.inUse, 0);
  // larger than the whole budget: cut to it, so it runs alone
  const big = await b.acquire(1e9, 1000);
  assert.equal(b.inUse, 100);
  // a waiter that times out leaves; the ones behind it still get served
  const late = b.acquire(50, 30);
  const behind = b.acquire(1, 1000);
  await assert.rejects(late, BudgetTimeoutError);
  big();
  (await behind)();
  assert.equal(b.inUse, 0);
  assert.equal(b.waiting, 0);
  assert.throws(() => new ByteBudget(0), RangeError);
});

test("ByteBudget: a waiter whose caller leaves gives up its place; tryAcquire never overtakes", async () => {
  const b = new ByteBudget(100);
  const held = b.tryAcquire(80)!;
  assert.equal(b.tryAcquire(30), undefined, "does not fit");
  const gone = new AbortController();
  const leaving = b.acquire(50, 10_000, gone.signal);
  const next = b.acquire(20, 10_000);
  assert.equal(b.tryAcquire(10), undefined, "fits, but two are waiting");
  gone.abort(new Error("client went away"));
  await assert.rejects(leaving, /client went away/);
  (await next)(); // served once the one ahead of it left
  assert.equal(b.waiting, 0);
  held();
  assert.equal(b.inUse, 0);
  await assert.rejects(b.acquire(1, 10, AbortSignal.abort(new Error("already gone"))), /already gone/);
});

const REL = "synthetic/paged.h5"; // d0, d1, d3, d4: 3,000 float64 each (24,000 bytes), 6 chunks
let svc: CorpusService;
let src: string;

before(async () => {
  svc = await startCorpusService("lindi-budget-", (dir) => testConfig(dir, { probeTtlSeconds: 60, sliceInflightBytes: 30_000, sliceQueueSeconds: 1 }));
  src = encodeURIComponent(svc.origin.url(REL));
  assert.equal((await call(svc.base, `/lindi?url=${src}`)).status, 200, "index built");
});

after(async () => {
  await svc?.close();
});

test("/slice: an answer that does not fit waits for the one in progress, then runs", async () => {
  svc.origin.setFaults({ latencyMs: 250 });
  try {
    const t0 = performance.now();
    const timed = async (path: string) => {
      const r = await call(svc.base, `/slice?url=${src}&path=${path}&format=bin`);
      return { status: r.status, ms: performance.now() - t0, bytes: r.body.byteLength };
    };
    const first = timed("/d0");
    await new Promise((r) => setTimeout(r, 50)); // d0 takes its share first
    const second = timed("/d1");
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.status, b.status], [200, 200]);
    assert.equal(a.bytes, 24_000);
    assert.ok(b.ms >= a.ms, `d1 (${b.ms.toFixed(0)} ms) finished after d0 (${a.ms.toFixed(0)} ms)`);
    assert.ok(b.ms >= 450, `d1 waited for d0, then made its own 250 ms request (${b.ms.toFixed(0)} ms)`);
    assert.equal(svc.app.lindiData.sliceBudget.inUse, 0, "every share given back");
  } finally {
    svc.origin.setFaults({});
  }
});

test("/slice: a wait longer than LINDI_SLICE_QUEUE_SECONDS is a 503 with Retry-After; the one in progress still succeeds", async () => {
  svc.origin.setFaults({ latencyMs: 1500 });
  try {
    const first = call(svc.base, `/slice?url=${src}&path=/d3&format=bin`);
    await new Promise((r) => setTimeout(r, 100));
    const second = await call(svc.base, `/slice?url=${src}&path=/d4&format=bin`);
    assert.equal(second.status, 503, second.body.toString());
    assert.equal(second.headers["retry-after"], "5");
    assert.match(second.json<{ message: string }>().message, /LINDI_SLICE_INFLIGHT_BYTES/);
    assert.equal((await first).status, 200);
    assert.equal(svc.app.lindiData.sliceBudget.inUse, 0);
  } finally {
    svc.origin.setFaults({});
  }
});

test("/slice: a client that leaves while waiting gives its place up (no share is kept for it)", async () => {
  svc.origin.setFaults({ latencyMs: 600 });
  try {
    const budget = svc.app.lindiData.sliceBudget;
    svc.app.lindiData.clearCaches(); // the datasets were read by the tests above
    const first = call(svc.base, `/slice?url=${src}&path=/d3&select=0:2999&format=bin`);
    await new Promise((r) => setTimeout(r, 100));
    const gone = new AbortController();
    const second = request(`${svc.base}/slice?url=${src}&path=/d4&select=0:2999&format=bin`, { signal: gone.signal });
    for (let i = 0; i < 100 && budget.waiting === 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(budget.waiting, 1, "the second waits");
    const metrics = (await call(svc.base, "/metrics")).body.toString();
    assert.match(metrics, /^lindi_slice_waiting 1$/m);
    assert.match(metrics, /^lindi_slice_inflight_bytes 23992$/m);
    gone.abort();
    await assert.rejects(second);
    for (let i = 0; i < 100 && budget.waiting > 0; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(budget.waiting, 0, "its place was given up before the first finished");
    assert.equal((await first).status, 200);
    assert.equal(budget.inUse, 0, "every share given back");
  } finally {
    svc.origin.setFaults({});
  }
  assert.equal((await call(svc.base, `/slice?url=${src}&path=/d4&select=0:10&format=bin`)).status, 200);
  const after = (await call(svc.base, "/metrics")).body.toString();
  assert.match(after, /^lindi_slice_inflight_bytes 0$/m);
  assert.ok(Number(/^lindi_chunk_cache_bytes\{kind="encoded"\} (\d+)$/m.exec(after)?.[1]) > 0, "chunks cached");
  assert.ok(Number(/^lindi_chunk_cache_bytes\{kind="decoded"\} (\d+)$/m.exec(after)?.[1]) > 0, "decoded chunks cached");
});

test("/slice: an answer larger than the whole budget still runs (alone)", async () => {
  const small = await startCorpusService("lindi-budget-small-", (dir) => testConfig(dir, { sliceInflightBytes: 10_000, sliceQueueSeconds: 1 }));
  try {
    const u = encodeURIComponent(small.origin.url(REL));
    const r = await call(small.base, `/slice?url=${u}&path=/d0&format=bin`);
    assert.equal(r.status, 200, r.body.toString());
    assert.equal(r.body.byteLength, 24_000);
    assert.equal(small.app.lindiData.sliceBudget.inUse, 0);
  } finally {
    await small.close();
  }
});
