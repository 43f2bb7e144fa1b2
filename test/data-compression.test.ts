/**
 * Large JSON answers of /slice and /meta are gzipped when the client accepts
 * gzip (above JSON_COMPRESS_THRESHOLD; streamed answers too); binary answers
 * and small ones never are. Real server, loopback origin.
 */
import assert from "node:assert/strict";
import { gunzipSync } from "node:zlib";
import { after, before, test } from "node:test";
import { request } from "undici";
import { JSON_COMPRESS_THRESHOLD } from "../src/service/data/compression.ts";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { call, testConfig } from "./support/service.ts";

let svc: CorpusService;
const u = (rel: string) => encodeURIComponent(svc.origin.url(rel));

before(async () => {
  svc = await startCorpusService("lindi-gzip-", (dir) => testConfig(dir, { probeTtlSeconds: 60 }));
});

after(async () => {
  await svc?.close();
});

const GZIP = { "accept-encoding": "gzip, deflate, br" };

test("a large json slice is gzipped when accepted, and equals the plain answer", async () => {
  const q = `/slice?url=${u("synthetic/chunk_index_latest.h5")}&path=/fixed_array_many&select=0:5000&format=json`;
  const plain = await call(svc.base, q);
  assert.equal(plain.status, 200);
  assert.ok(plain.body.byteLength > JSON_COMPRESS_THRESHOLD, `${plain.body.byteLength} bytes of json`);
  assert.equal(plain.headers["content-encoding"], undefined);
  const zipped = await call(svc.base, q, GZIP);
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers["content-encoding"], "gzip");
  assert.match(zipped.headers["vary"] ?? "", /accept-encoding/i);
  assert.ok(zipped.body.byteLength < plain.body.byteLength);
  assert.deepEqual(gunzipSync(zipped.body), plain.body);
  assert.equal(zipped.headers["etag"], plain.headers["etag"], "one weak tag for both codings");
});

test("a streamed json slice (over 65,536 elements) is gzipped too", async () => {
  const q = `/slice?url=${u("synthetic/chunk_index_latest.h5")}&path=/fixed_array_many&select=0:100000&format=json`;
  const plain = await call(svc.base, q);
  const zipped = await call(svc.base, q, GZIP);
  assert.equal(zipped.status, 200);
  assert.equal(zipped.headers["content-encoding"], "gzip");
  assert.deepEqual(JSON.parse(gunzipSync(zipped.body).toString()), JSON.parse(plain.body.toString()));
});

test("binary answers, small answers and chunks are never compressed", async () => {
  const bin = await call(svc.base, `/slice?url=${u("synthetic/paged.h5")}&path=/d0&format=bin`, GZIP);
  assert.equal(bin.status, 200);
  assert.equal(bin.body.byteLength, 24_000);
  assert.equal(bin.headers["content-encoding"], undefined);
  const small = await call(svc.base, `/slice?url=${u("synthetic/paged.h5")}&path=/d0&select=0:3&format=json`, GZIP);
  assert.equal(small.headers["content-encoding"], undefined);
  assert.deepEqual(small.json<{ shape: number[] }>().shape, [3]);
  const chunk = await call(svc.base, `/chunk?url=${u("synthetic/paged.h5")}&path=/d0&key=0`, GZIP);
  assert.equal(chunk.status, 200);
  assert.equal(chunk.headers["content-encoding"], undefined);
});

test("a client that drops a gzipped streamed answer midway: the service stays up and gives the memory back", async () => {
  const q = `/slice?url=${u("synthetic/chunk_index_latest.h5")}&path=/fixed_array_many&select=0:200000&format=json`;
  const gone = new AbortController();
  const res = await request(`${svc.base}${q}`, { headers: GZIP, signal: gone.signal });
  assert.equal(res.statusCode, 200);
  assert.equal(res.headers["content-encoding"], "gzip");
  for await (const _piece of res.body) {
    gone.abort(); // after the first piece
    break;
  }
  const budget = svc.app.lindiData.sliceBudget;
  for (let i = 0; i < 200 && budget.inUse > 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.equal(budget.inUse, 0);
  const again = await call(svc.base, `/slice?url=${u("synthetic/paged.h5")}&path=/d1&select=0:5&format=json`, GZIP);
  assert.equal(again.status, 200);
});
