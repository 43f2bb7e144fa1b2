/**
 * The answer cache (src/service/data/answerCache.ts): /slice and /meta answers
 * kept by ETag, so a repeated query is answered without reading, decoding or
 * encoding again. Against the real server and a loopback origin serving a
 * file written here with h5wasm; "answered from the cache" is shown by the
 * origin failing every request and the chunk caches being emptied: only the
 * kept answer can then answer.
 */
import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import h5wasm from "h5wasm";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import type { ServiceConfig } from "../src/config.ts";
import { loadH5wasm } from "../src/hdf5/h5wasmRuntime.ts";
import { AnswerCache } from "../src/service/data/answerCache.ts";
import { buildServer } from "../src/server.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { call, listenLoopback, testConfig, type Answer } from "./support/service.ts";

const FILE = "answers.h5";
/** int32 0..N-1 in chunks of 10,000 (gzip): large enough for a streamed JSON answer. */
const N = 2_000_000;
const CHUNK = 10_000;

let dir: string;
let origin: RangeOrigin;
const services: { app: FastifyInstance; dir: string }[] = [];

async function writeFileWithH5wasm(to: string, values: Int32Array): Promise<void> {
  const m = await loadH5wasm();
  const name = `answers-${process.pid}.h5`;
  const f = new h5wasm.File(name, "w");
  f.create_dataset({ name: "ints", data: values, shape: [values.length], chunks: [CHUNK], compression: "gzip", compression_opts: 1 });
  f.create_dataset({ name: "small", data: new Float64Array([0.5, 1.5, 2.5]), shape: [3] });
  f.close();
  await writeFile(to, m.FS.readFile(name) as Uint8Array);
  m.FS.unlink(name);
}

async function startService(over: Partial<ServiceConfig>): Promise<string> {
  const cacheDir = await mkdtemp(path.join(tmpdir(), "lindi-answers-svc-"));
  const app = await buildServer(testConfig(cacheDir, { probeTtlSeconds: 3600, sliceMaxElements: N, sliceMaxBytes: 64 * 1024 * 1024, ...over }));
  services.push({ app, dir: cacheDir });
  const base = await listenLoopback(app);
  assert.equal((await call(base, `/lindi?url=${src()}`)).status, 200, "index built");
  return base;
}

const src = () => encodeURIComponent(origin.url(FILE));

/** Empties the chunk caches (not the answers) and makes the origin fail every request. */
function originDownChunksForgotten(app: FastifyInstance): void {
  app.lindiData.chunkCache.clear();
  app.lindiData.decodedCache.clear();
  origin.setFaults({ error500: 1_000_000 });
  origin.resetStats();
}

function sameAnswer(again: Answer, first: Answer, what: string): void {
  assert.equal(again.status, 200, `${what}: ${again.body.toString().slice(0, 200)}`);
  assert.deepEqual(again.body, first.body, `${what}: the same bytes`);
  for (const h of ["etag", "content-type", "x-dtype", "x-shape", "content-disposition"]) assert.equal(again.headers[h], first.headers[h], `${what}: ${h}`);
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "lindi-answers-"));
  await writeFileWithH5wasm(path.join(dir, FILE), Int32Array.from({ length: N }, (_, i) => i));
  origin = await startRangeOrigin({ root: dir });
});

after(async () => {
  for (const s of services) {
    await s.app.close();
    await rm(s.dir, { recursive: true, force: true });
  }
  await origin?.close();
  await rm(dir, { recursive: true, force: true });
});

test("a repeated /slice (json, bin, npy) and /meta query is answered from the answer cache: no read, same bytes and headers", async () => {
  const base = await startService({});
  const app = services.at(-1)!.app;
  const queries = [
    `/slice?url=${src()}&path=/ints&select=5:25005:7&format=json`,
    `/slice?url=${src()}&path=/ints&select=5:25005:7&format=bin`,
    `/slice?url=${src()}&path=/ints&select=-3:&format=npy`,
    `/slice?url=${src()}&path=/small`,
    `/meta?url=${src()}&path=/ints`,
  ];
  origin.setFaults({});
  const first = new Map<string, Answer>();
  for (const q of queries) {
    const a = await call(base, q);
    assert.equal(a.status, 200, `${q}: ${a.body.toString().slice(0, 200)}`);
    first.set(q, a);
  }
  assert.deepEqual(first.get(queries[0]!)!.json<{ data: number[] }>().data.slice(0, 3), [5, 12, 19]);
  assert.equal(first.get(queries[2]!)!.headers["content-disposition"], 'attachment; filename="ints.npy"');
  const hitsBefore = app.lindiData.answers.stats.hits;

  originDownChunksForgotten(app);
  try {
    for (const q of queries) sameAnswer(await call(base, q), first.get(q)!, q);
    assert.equal(origin.stats.requests, 0, "the origin was not asked");
    assert.equal(app.lindiData.answers.stats.hits - hitsBefore, queries.length);
    // another selection is not an answer kept: it needs the origin, which fails
    const other = await call(base, `/slice?url=${src()}&path=/ints&select=5:25006:7&format=bin`);
    assert.equal(other.status, 502, other.body.toString());
    // a gzip-accepting client gets the kept JSON compressed, with the same tag
    const gz = await call(base, queries[0]!, { "accept-encoding": "gzip" });
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.equal(gz.headers["etag"], first.get(queries[0]!)!.headers["etag"]);
  } finally {
    origin.setFaults({});
  }
  const metrics = (await call(base, "/metrics")).body.toString();
  assert.ok(Number(/^lindi_answer_cache_lookups\{outcome="hit"\} (\d+)$/m.exec(metrics)?.[1]) >= queries.length + 1, "hits in /metrics");
  assert.ok(Number(/^lindi_answer_cache_bytes (\d+)$/m.exec(metrics)?.[1]) > 0, "bytes in /metrics");
});

test("LINDI_ANSWER_CACHE_BYTES=0: nothing is kept, a repeat reads again", async () => {
  const base = await startService({ answerCacheBytes: 0 });
  const app = services.at(-1)!.app;
  origin.setFaults({});
  const q = `/slice?url=${src()}&path=/ints&select=0:100&format=bin`;
  assert.equal((await call(base, q)).status, 200);
  originDownChunksForgotten(app);
  try {
    assert.equal((await call(base, q)).status, 502, "read again, and the origin fails");
    assert.equal(app.lindiData.answers.size, 0);
  } finally {
    origin.setFaults({});
  }
});

test("a streamed JSON answer is kept once sent whole, and not when its client left before the end", async () => {
  const base = await startService({ answerCacheBytes: 256 * 1024 * 1024 });
  const app = services.at(-1)!.app;
  origin.setFaults({});
  // 100,000 elements: over the 65,536 that are encoded at once, so streamed in pieces
  const streamed = `/slice?url=${src()}&path=/ints&select=0:100000&format=json`;
  const first = await call(base, streamed);
  assert.equal(first.status, 200);
  const values = first.json<{ data: number[] }>().data;
  assert.equal(values.length, 100_000);
  assert.equal(values[99_999], 99_999);

  // the whole dataset (≈ 15 MB of JSON): the client reads its first bytes and hangs up
  const whole = `/slice?url=${src()}&path=/ints&format=json`;
  const res = await request(base + whole);
  assert.equal(res.statusCode, 200);
  for await (const piece of res.body) {
    assert.ok((piece as Buffer).byteLength > 0);
    break; // leaving the loop destroys the body: the connection is closed mid-answer
  }
  // the server notices the close and stops the generator; give it a few turns
  await new Promise((r) => setTimeout(r, 200));

  originDownChunksForgotten(app);
  try {
    sameAnswer(await call(base, streamed), first, "the streamed answer, kept");
    const again = await call(base, whole);
    assert.equal(again.status, 502, "the abandoned answer was not kept: read again, and the origin fails");
  } finally {
    origin.setFaults({});
  }
});

test("AnswerCache: off at 0; answers over an eighth of the bound are not kept; the bound holds; views are copied to their own memory", () => {
  const off = new AnswerCache(0);
  off.set("t", { body: Buffer.alloc(10), contentType: "application/json", headers: {} });
  assert.equal(off.get("t"), undefined);
  assert.equal(off.fits(1), false);

  const cache = new AnswerCache(80_000);
  assert.equal(cache.maxItemBytes, 10_000);
  assert.equal(cache.fits(10_000), true);
  assert.equal(cache.fits(10_001), false);
  cache.set("big", { body: Buffer.alloc(10_001), contentType: "application/octet-stream", headers: {} });
  assert.equal(cache.get("big"), undefined, "over an eighth: not kept");

  // a small Buffer.from(string) is a view into Node's shared pool: kept as a copy of its own
  const pooled = Buffer.from('{"a":1}', "utf8");
  assert.ok(pooled.buffer.byteLength > pooled.byteLength, "the test needs a pooled buffer");
  cache.set("pooled", { body: pooled, contentType: "application/json", headers: {} });
  const kept = cache.get("pooled")!;
  assert.deepEqual(kept.body, pooled);
  assert.equal(kept.body.buffer.byteLength, kept.body.byteLength, "owns exactly its bytes");

  for (let i = 0; i < 50; i++) cache.set(`k${i}`, { body: Buffer.alloc(9_000, i), contentType: "application/octet-stream", headers: {} });
  assert.ok(cache.size <= 80_000, `bounded: ${cache.size}`);
  assert.equal(cache.get("k0"), undefined, "the oldest went first");
  assert.equal(cache.get("k49")!.body[0], 49);
  const { hits, misses } = cache.stats;
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.get("k49"), undefined);
  assert.deepEqual(cache.stats, { hits, misses: misses + 1 });
});
