/**
 * ETag / If-None-Match on the data endpoints, against the real server and
 * the loopback origin: an answer's ETag names the index version and the
 * query, so a revalidation answers 304 without touching the origin, and a
 * changed source (new version) gets new ETags.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { call, testConfig } from "./support/service.ts";

const REL = "synthetic/chunk_index_latest.h5";
let svc: CorpusService;
let src: string;

before(async () => {
  svc = await startCorpusService("lindi-etag-", (dir) => testConfig(dir, { probeTtlSeconds: 0 }));
  src = encodeURIComponent(svc.origin.url(REL));
});

after(async () => {
  await svc?.close();
});

test("/slice: an ETag per index version and query; If-None-Match → 304 without reading a chunk", async () => {
  const q = `/slice?url=${src}&path=/fixed_array&select=0:10&format=bin`;
  const first = await call(svc.base, q);
  assert.equal(first.status, 200, first.body.toString());
  const etag = first.headers["etag"]!;
  // weak: the same answer may go out gzipped or not
  assert.match(etag, /^W\/"[\w-]{32}"$/);
  assert.equal(first.headers["cache-control"], "public, no-cache");
  assert.equal((await call(svc.base, q)).headers["etag"], etag, "the same answer, the same tag");

  svc.app.lindiData.clearCaches();
  svc.origin.resetStats();
  const again = await call(svc.base, q, { "if-none-match": etag });
  assert.equal(again.status, 304);
  assert.equal(again.body.byteLength, 0);
  assert.equal(again.headers["etag"], etag);
  assert.equal(svc.origin.stats.gets, 0, "no chunk was fetched");
  // the strong form and lists match too; another tag does not
  assert.equal((await call(svc.base, q, { "if-none-match": `"x", ${etag.slice(2)}` })).status, 304);
  assert.equal((await call(svc.base, q, { "if-none-match": '"something-else"' })).status, 200);

  // other queries, other tags
  const tags = new Set([etag]);
  for (const other of [`/slice?url=${src}&path=/fixed_array&select=0:11&format=bin`, `/slice?url=${src}&path=/fixed_array&select=0:10&format=json`, `/slice?url=${src}&path=/fixed_array&select=0:10&format=npy`]) {
    const r = await call(svc.base, other);
    assert.equal(r.status, 200);
    tags.add(r.headers["etag"]!);
  }
  assert.equal(tags.size, 4);
});

test("/meta and /chunk: ETag and 304; a ranged chunk answer carries the whole chunk's tag", async () => {
  const meta = await call(svc.base, `/meta?url=${src}&path=/fixed_array`);
  assert.equal(meta.status, 200);
  assert.equal((await call(svc.base, `/meta?url=${src}&path=/fixed_array`, { "if-none-match": meta.headers["etag"]! })).status, 304);
  assert.notEqual((await call(svc.base, `/meta?url=${src}&path=/fixed_array&depth=2`)).headers["etag"], meta.headers["etag"]);

  const chunkQ = `/chunk?url=${src}&path=/fixed_array&key=0.0`;
  const whole = await call(svc.base, chunkQ);
  assert.equal(whole.status, 200, whole.body.toString());
  assert.match(whole.headers["etag"] ?? "", /^"[\w-]{32}"$/, "chunks are never re-encoded: a strong tag");
  const part = await call(svc.base, chunkQ, { range: "bytes=0-9" });
  assert.equal(part.status, 206);
  assert.equal(part.headers["etag"], whole.headers["etag"]);
  svc.origin.resetStats();
  const cond = await call(svc.base, chunkQ, { range: "bytes=0-9", "if-none-match": whole.headers["etag"]! });
  assert.equal(cond.status, 304, "If-None-Match is evaluated before Range");
  assert.equal(svc.origin.stats.gets, 0);
  // errors carry no ETag
  const missing = await call(svc.base, `/slice?url=${src}&path=/nope`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers["etag"], undefined);
});

test("a changed source is a new index version: its answers get new ETags", async () => {
  const q = `/slice?url=${src}&path=/fixed_array&select=0:10&format=bin`;
  const before = await call(svc.base, q);
  svc.origin.updateFaults({ etag: '"changed-source"' });
  try {
    const after = await call(svc.base, `${q}`, { "if-none-match": before.headers["etag"]! });
    assert.equal(after.status, 200, "the old tag no longer matches");
    assert.notEqual(after.headers["etag"], before.headers["etag"]);
    assert.deepEqual(after.body, before.body, "same bytes (the file did not really change), new version");
  } finally {
    svc.origin.updateFaults({ etag: undefined });
  }
});

test("a source that changes under its index (probe still fresh): even the first read is refused with 502", async () => {
  const fresh = await startCorpusService("lindi-etag-ttl-", (dir) => testConfig(dir, { probeTtlSeconds: 3600 }));
  try {
    const u = encodeURIComponent(fresh.origin.url(REL));
    assert.equal((await call(fresh.base, `/lindi?url=${u}`)).status, 200, "index built");
    fresh.origin.updateFaults({ etag: '"rewritten"' });
    // no read of this index happened yet: the ETag it was built from is what reads must see
    const r = await call(fresh.base, `/slice?url=${u}&path=/fixed_array&select=0:10&format=bin`);
    assert.equal(r.status, 502, r.body.toString());
    assert.match(r.json<{ message: string }>().message, /ETag|changed/i);
    assert.equal(r.headers["etag"], undefined);
  } finally {
    await fresh.close();
  }
});
