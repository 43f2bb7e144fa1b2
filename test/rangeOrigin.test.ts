import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Agent, request } from "undici";
import { startRangeOrigin, seededRandom, type RangeOrigin } from "./support/rangeOrigin.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const corpus = path.resolve(repoRoot, "../shared/corpus/files");
const FILE = "synthetic/userblock_512.h5";

function requireCorpus(): void {
  if (!existsSync(corpus)) assert.fail("../shared/corpus is missing: the corpus must sit beside the repo");
}

describe("rangeOrigin", { timeout: 30_000 }, () => {
  let origin: RangeOrigin;
  let agent: Agent;
  let bytes: Buffer;

  before(async () => {
    requireCorpus();
    bytes = readFileSync(path.join(corpus, FILE));
    origin = await startRangeOrigin({ root: corpus });
    agent = new Agent({ headersTimeout: 5000, bodyTimeout: 5000 });
  });
  after(async () => {
    await origin?.close();
    await agent?.close();
  });
  afterEach(() => {
    origin.setFaults({});
    origin.resetStats();
  });

  async function get(url: string, headers: Record<string, string> = {}, method: "GET" | "HEAD" = "GET") {
    const res = await request(url, { dispatcher: agent, method, headers });
    const body = Buffer.from(await res.body.arrayBuffer());
    return { status: res.statusCode, headers: res.headers, body };
  }

  test("listens on loopback only", () => {
    assert.match(origin.baseUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
  });

  test("HEAD: size, ETag, Last-Modified, Accept-Ranges", async () => {
    const r = await get(origin.url(FILE), {}, "HEAD");
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-length"], String(bytes.length));
    assert.equal(r.headers["accept-ranges"], "bytes");
    assert.ok(r.headers.etag, "r.headers.etag");
    assert.ok(r.headers["last-modified"], "r.headers[\"last-modified\"]");
    assert.equal(r.body.length, 0);
  });

  test("Range: 206 with Content-Range, suffix and open ranges, 416", async () => {
    const r = await get(origin.url(FILE), { range: "bytes=10-99" });
    assert.equal(r.status, 206);
    assert.equal(r.headers["content-range"], `bytes 10-99/${bytes.length}`);
    assert.deepEqual(r.body, bytes.subarray(10, 100));
    const s = await get(origin.url(FILE), { range: "bytes=-16" });
    assert.deepEqual(s.body, bytes.subarray(bytes.length - 16));
    const o = await get(origin.url(FILE), { range: `bytes=${bytes.length - 5}-` });
    assert.deepEqual(o.body, bytes.subarray(bytes.length - 5));
    const clip = await get(origin.url(FILE), { range: `bytes=${bytes.length - 5}-${bytes.length + 100}` });
    assert.equal(clip.status, 206);
    assert.deepEqual(clip.body, bytes.subarray(bytes.length - 5));
    const bad = await get(origin.url(FILE), { range: `bytes=${bytes.length}-${bytes.length + 10}` });
    assert.equal(bad.status, 416);
    assert.equal(bad.headers["content-range"], `bytes */${bytes.length}`);
    const full = await get(origin.url(FILE));
    assert.equal(full.status, 200);
    assert.deepEqual(full.body, bytes);
  });

  test("counts requests and bytes per path; resettable", async () => {
    await get(origin.url(FILE), { range: "bytes=0-9" });
    await get(origin.url(FILE), { range: "bytes=0-99" });
    await get(origin.url(FILE), {}, "HEAD");
    assert.equal(origin.stats.requests, 3);
    assert.equal(origin.stats.gets, 2);
    assert.equal(origin.stats.heads, 1);
    assert.equal(origin.stats.byPath[FILE]?.requests, 3);
    assert.equal(origin.stats.byPath[FILE]?.bytes, 110);
    assert.equal(origin.stats.bytes, 110);
    assert.equal(origin.log.length, 3);
    assert.equal(origin.log[0]?.range, "bytes=0-9");
    origin.resetStats();
    assert.equal(origin.stats.requests, 0);
    assert.equal(origin.log.length, 0);
  });

  test("404 for missing files, path traversal and notFound fault", async () => {
    assert.equal((await get(origin.url("no/such/file.h5"))).status, 404);
    assert.equal((await get(`${origin.baseUrl}/..%2F..%2Fetc%2Fpasswd`)).status, 404);
    origin.setFaults({ notFound: [FILE] });
    assert.equal((await get(origin.url(FILE))).status, 404);
  });

  test("redirects: 302 per hop, counted, optionally to another base", async () => {
    const r = await get(origin.redirectUrl(FILE, 2));
    assert.equal(r.status, 302);
    assert.equal(r.headers.location, `/redirect/${FILE}`);
    assert.equal(origin.stats.redirects, 1);
    origin.setFaults({ redirectBase: "http://127.0.0.1:1" });
    const r2 = await get(origin.redirectUrl(FILE));
    assert.equal(r2.headers.location, `http://127.0.0.1:1/${FILE}`);
  });

  test("signed redirects: unsigned or expired requests get 403", async () => {
    origin.setFaults({ signedRedirects: { ttlMs: 100 } });
    assert.equal((await get(origin.url(FILE))).status, 403);
    const r = await get(origin.redirectUrl(FILE));
    const target = new URL(String(r.headers.location), origin.baseUrl).href;
    assert.equal((await get(target, { range: "bytes=0-3" })).status, 206);
    await new Promise((res) => setTimeout(res, 150));
    assert.equal((await get(target, { range: "bytes=0-3" })).status, 403);
  });

  test("500 / status / forbidden for the first N requests", async () => {
    origin.setFaults({ error500: 2 });
    assert.equal((await get(origin.url(FILE))).status, 500);
    assert.equal((await get(origin.url(FILE))).status, 500);
    assert.equal((await get(origin.url(FILE))).status, 200);
    assert.equal(origin.stats.faults.error500, 2);
    origin.setFaults({ status: { code: 429, count: 1, retryAfter: 1 } });
    const r = await get(origin.url(FILE));
    assert.equal(r.status, 429);
    assert.equal(r.headers["retry-after"], "1");
    origin.setFaults({ forbidden: 1 });
    assert.equal((await get(origin.url(FILE))).status, 403);
    assert.equal((await get(origin.url(FILE))).status, 200);
  });

  test("HEAD refused, Range ignored, ETag changed", async () => {
    origin.setFaults({ refuseHead: 405 });
    assert.equal((await get(origin.url(FILE), {}, "HEAD")).status, 405);
    assert.equal((await get(origin.url(FILE), { range: "bytes=0-0" })).status, 206);
    origin.setFaults({ ignoreRange: true });
    const r = await get(origin.url(FILE), { range: "bytes=0-9" });
    assert.equal(r.status, 200);
    assert.equal(r.headers["accept-ranges"], undefined);
    assert.equal(r.body.length, bytes.length);
    origin.setFaults({ etag: '"changed"' });
    assert.equal((await get(origin.url(FILE), {}, "HEAD")).headers.etag, '"changed"');
  });

  test("truncated body and reset mid-body fail the client's read", async () => {
    origin.setFaults({ truncate: { count: 1 } });
    await assert.rejects(get(origin.url(FILE), { range: "bytes=0-9999" }));
    const ok = await get(origin.url(FILE), { range: "bytes=0-9999" });
    assert.deepEqual(ok.body, bytes.subarray(0, 10000));
    origin.setFaults({ resetMidBody: { count: 1 } });
    await assert.rejects(get(origin.url(FILE), { range: "bytes=0-9999" }));
    assert.equal((await get(origin.url(FILE), { range: "bytes=0-9999" })).status, 206);
  });

  test("reset with a probability is deterministic for a seed", async () => {
    const pattern = async () => {
      origin.setFaults({ resetMidBody: { probability: 0.5, seed: 7 } });
      const out: boolean[] = [];
      for (let i = 0; i < 8; i++) {
        out.push(
          await get(origin.url(FILE), { range: "bytes=0-999" }).then(
            () => true,
            () => false,
          ),
        );
      }
      return out;
    };
    const a = await pattern();
    const b = await pattern();
    assert.deepEqual(a, b);
    assert.ok(a.includes(true) && a.includes(false), `expected a mix, got ${a}`);
    const r = seededRandom(3);
    const r2 = seededRandom(3);
    assert.equal(r(), r2());
  });

  test("latency, bandwidth cap and drip slow answers down", async () => {
    origin.setFaults({ latencyMs: 120 });
    let t = Date.now();
    await get(origin.url(FILE), { range: "bytes=0-9" });
    assert.ok(Date.now() - t >= 110, "Date.now() - t >= 110");
    origin.setFaults({ bandwidthBytesPerSec: 20_000 });
    t = Date.now();
    const r = await get(origin.url(FILE), { range: "bytes=0-5999" });
    assert.deepEqual(r.body, bytes.subarray(0, 6000));
    assert.ok(Date.now() - t >= 200, `bandwidth cap not applied (${Date.now() - t} ms)`);
    origin.setFaults({ drip: { bytes: 10, intervalMs: 20, count: 1 } });
    t = Date.now();
    const d = await get(origin.url(FILE), { range: "bytes=0-99" });
    assert.deepEqual(d.body, bytes.subarray(0, 100));
    assert.ok(Date.now() - t >= 150, "Date.now() - t >= 150");
  });

  test("hang never answers; close() still returns promptly", async () => {
    const o2 = await startRangeOrigin({ root: corpus, hang: {} });
    const ac = new AbortController();
    const pending = request(o2.url(FILE), { dispatcher: agent, signal: ac.signal }).then(
      () => "answered",
      () => "failed",
    );
    const winner = await Promise.race([pending, new Promise((r) => setTimeout(() => r("timeout"), 300))]);
    assert.equal(winner, "timeout");
    assert.equal(o2.stats.concurrent, 1);
    const t = Date.now();
    await o2.close();
    assert.ok(Date.now() - t < 2000, "Date.now() - t < 2000");
    assert.equal(await pending, "failed");
  });

  test("tracks concurrent requests", async () => {
    origin.setFaults({ latencyMs: 100 });
    await Promise.all(Array.from({ length: 4 }, () => get(origin.url(FILE), { range: "bytes=0-9" })));
    assert.equal(origin.stats.maxConcurrent, 4);
    assert.equal(origin.stats.concurrent, 0);
  });
});
