/**
 * CORS: a dashboard on another origin reads /slice, /chunk, /meta and /lindi
 * from a browser. The real server on 127.0.0.1 in front of the loopback
 * origin: answers carry Access-Control-Allow-Origin and expose the headers a
 * script needs (X-Dtype/X-Shape of bin answers, the chunk codec headers,
 * ETag, Content-Range); preflights allow GET and HEAD, never POST/DELETE
 * (a page elsewhere must not start or cancel precompute jobs).
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { request } from "undici";
import { startCorpusService, type CorpusService } from "./support/corpusService.ts";
import { call, testConfig } from "./support/service.ts";

const REL = "synthetic/chunk_index_latest.h5";
const VIEWER = "https://viewer.example.org";
let open: CorpusService;
let allowList: CorpusService;
let off: CorpusService;

before(async () => {
  open = await startCorpusService("lindi-cors-", (dir) => testConfig(dir));
  allowList = await startCorpusService("lindi-cors-list-", (dir) => testConfig(dir, { corsOrigins: [VIEWER] }));
  off = await startCorpusService("lindi-cors-off-", (dir) => testConfig(dir, { corsOrigins: null }));
});

after(async () => {
  await open?.close();
  await allowList?.close();
  await off?.close();
});

function sliceQuery(s: CorpusService): string {
  return `/slice?url=${encodeURIComponent(s.origin.url(REL))}&path=/fixed_array&select=0:10&format=bin`;
}

async function preflight(base: string, path: string, method: string): Promise<{ status: number; headers: Record<string, string> }> {
  const res = await request(base + path, {
    method: "OPTIONS",
    headers: { origin: VIEWER, "access-control-request-method": method, "access-control-request-headers": "authorization" },
  });
  await res.body.dump();
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (typeof v === "string") headers[k] = v;
  return { status: res.statusCode, headers };
}

test("by default any origin may read: a bin slice's dtype and shape are readable by the page", async () => {
  const r = await call(open.base, sliceQuery(open), { origin: VIEWER });
  assert.equal(r.status, 200, r.body.toString());
  assert.equal(r.headers["access-control-allow-origin"], "*");
  const exposed = (r.headers["access-control-expose-headers"] ?? "").split(",").map((h) => h.trim().toLowerCase());
  for (const h of ["x-dtype", "x-shape", "x-lindi-filters", "x-lindi-compressor", "etag", "content-range"]) assert.ok(exposed.includes(h), `${h} exposed (${exposed.join(", ")})`);
  assert.match(r.headers["x-shape"] ?? "", /^10(,\d+)*$/);
  // errors too: the page can read why a request failed
  const bad = await call(open.base, `/slice?url=${encodeURIComponent(open.origin.url(REL))}&path=/nope`, { origin: VIEWER });
  assert.equal(bad.status, 404);
  assert.equal(bad.headers["access-control-allow-origin"], "*");
});

test("preflights allow GET and HEAD only", async () => {
  const get = await preflight(open.base, sliceQuery(open), "GET");
  assert.equal(get.status, 204);
  assert.equal(get.headers["access-control-allow-origin"], "*");
  assert.deepEqual(
    get.headers["access-control-allow-methods"]!.split(",").map((m) => m.trim()),
    ["GET", "HEAD"],
  );
  assert.match(get.headers["access-control-allow-headers"] ?? "", /authorization/i);
  assert.ok(Number(get.headers["access-control-max-age"]) > 0);
  const post = await preflight(open.base, "/jobs", "POST");
  assert.ok(!/POST/.test(post.headers["access-control-allow-methods"] ?? ""), "POST is not allowed cross-origin");
  const del = await preflight(open.base, "/jobs/x", "DELETE");
  assert.ok(!/DELETE/.test(del.headers["access-control-allow-methods"] ?? ""), "DELETE is not allowed cross-origin");
});

test("with an allow-list only those origins get the header (and caches are told it varies)", async () => {
  const ok = await call(allowList.base, sliceQuery(allowList), { origin: VIEWER });
  assert.equal(ok.status, 200);
  assert.equal(ok.headers["access-control-allow-origin"], VIEWER);
  assert.match(ok.headers["vary"] ?? "", /origin/i);
  const other = await call(allowList.base, sliceQuery(allowList), { origin: "https://evil.example.com" });
  assert.equal(other.status, 200, "the server answers; the browser withholds it");
  assert.equal(other.headers["access-control-allow-origin"], undefined);
});

test("LINDI_CORS_ORIGINS=none: no CORS headers at all", async () => {
  const r = await call(off.base, sliceQuery(off), { origin: VIEWER });
  assert.equal(r.status, 200);
  assert.equal(r.headers["access-control-allow-origin"], undefined);
  assert.equal(r.headers["access-control-expose-headers"], undefined);
});
