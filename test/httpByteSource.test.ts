import { test, describe, before, after, afterEach } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startRangeOrigin, seededRandom, type RangeOrigin } from "./support/rangeOrigin.ts";
import {
  HttpClient,
  openHttpSource,
  looksLikeHdf5,
  findHdf5Signature,
  authHeadersFor,
  isAuthHost,
  isDandiAssetDownloadUrl,
  type HttpClientOptions,
} from "../src/hdf5/httpByteSource.ts";
import {
  OriginError,
  OriginTimeoutError,
  RangeNotSupportedError,
  SourceChangedError,
  SourceClosedError,
  SourceForbiddenError,
  SourceNotFoundError,
  TooManyRedirectsError,
  TruncatedBodyError,
  HttpSourceError,
} from "../src/hdf5/httpErrors.ts";
import { presignedExpiry } from "../src/hdf5/http/auth.ts";
import { parseContentRange } from "../src/hdf5/http/headers.ts";
import { MemoryByteSource } from "../src/hdf5/byteSource.ts";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const corpus = path.resolve(repoRoot, "../shared/corpus/files");

const MEDIUM = "generated-nwb/ecephys.nwb"; // ~2.2 MB
const LARGE = "synthetic/nwb_like_large_chunks.h5"; // ~4.4 MB
const UB512 = "synthetic/userblock_512.h5";
const UB4096 = "synthetic/userblock_4096_latest.h5";
const NOT_HDF5 = "manifest.json";

/** Fast settings so that fault tests finish quickly. */
const FAST: HttpClientOptions = {
  retries: 3,
  retryBaseDelayMs: 5,
  retryMaxDelayMs: 40,
  headersTimeoutMs: 3000,
  bodyTimeoutMs: 3000,
  requestTimeoutMs: 5000,
  random: seededRandom(42),
};

function requireCorpus(): void {
  if (!existsSync(corpus)) assert.fail("../shared/corpus is missing: the corpus must sit beside the repo");
}

function fileBytes(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(path.join(corpus, rel)));
}

/** Runs `p`, failing if it takes longer than `ms`. */
async function within<T>(ms: number, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`did not settle within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

describe("httpByteSource", { timeout: 60_000 }, () => {
  let origin: RangeOrigin;
  const clients: HttpClient[] = [];
  let medium: Uint8Array;
  let small: { rel: string; bytes: Uint8Array };

  function client(opts: HttpClientOptions = {}): HttpClient {
    const c = new HttpClient({ ...FAST, ...opts });
    clients.push(c);
    return c;
  }

  before(async () => {
    requireCorpus();
    medium = fileBytes(MEDIUM);
    small = { rel: UB512, bytes: fileBytes(UB512) };
    origin = await startRangeOrigin({ root: corpus });
  });
  after(async () => {
    await Promise.all(clients.map((c) => c.close()));
    await origin?.close();
  });
  afterEach(() => {
    origin.setFaults({});
    origin.resetStats();
  });

  test("corpus sits beside the repo", () => {
    requireCorpus();
  });

  test("size/ETag/Last-Modified from HEAD; random reads equal the file", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    assert.equal(src.size, medium.length);
    assert.ok(src.etag, "src.etag");
    assert.ok(src.lastModified, "src.lastModified");
    assert.equal(origin.stats.heads, 1);
    const rnd = seededRandom(1);
    const ranges = Array.from({ length: 60 }, () => {
      const offset = Math.floor(rnd() * medium.length);
      const length = 1 + Math.floor(rnd() * 200_000);
      return { offset, length };
    });
    const got = await Promise.all(ranges.map((r) => src.read(r.offset, r.length)));
    ranges.forEach((r, i) => {
      const want = medium.subarray(r.offset, Math.min(r.offset + r.length, medium.length));
      assert.equal(got[i]!.length, want.length);
      assert.ok(Buffer.from(got[i]!).equals(Buffer.from(want)), `range ${r.offset}+${r.length}`);
    });
  });

  test("EOF clipping, reads past the end, zero-length reads", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    const tail = await src.read(medium.length - 10, 100);
    assert.deepEqual(tail, medium.subarray(medium.length - 10));
    assert.equal((await src.read(medium.length, 10)).length, 0);
    assert.equal((await src.read(medium.length + 1000, 10)).length, 0);
    assert.equal((await src.read(5, 0)).length, 0);
    const whole = await src.read(0, medium.length);
    assert.ok(Buffer.from(whole).equals(Buffer.from(medium)), "Buffer.from(whole).equals(Buffer.from(medium))");
    await assert.rejects(src.read(-1, 5), RangeError);
  });

  test("identical concurrent reads share one request; readMany coalesces", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.resetStats();
    const same = await Promise.all(Array.from({ length: 10 }, () => src.read(1000, 5000)));
    assert.equal(origin.stats.gets, 1);
    for (const b of same) assert.deepEqual(b, medium.subarray(1000, 6000));
    origin.resetStats();
    const ranges = [
      { offset: 100, length: 50 },
      { offset: 0, length: 10 },
      { offset: 160, length: 40 },
      { offset: 1_000_000, length: 100 },
      { offset: medium.length - 5, length: 50 },
      { offset: medium.length + 5, length: 50 },
    ];
    const parts = await src.readMany(ranges);
    ranges.forEach((r, i) =>
      assert.deepEqual(parts[i], medium.subarray(Math.min(r.offset, medium.length), Math.min(r.offset + r.length, medium.length))),
    );
    assert.equal(origin.stats.gets, 3);
  });

  test("HEAD refused (403 and 405) → GET Range: bytes=0-0", async () => {
    for (const code of [403, 405] as const) {
      origin.setFaults({ refuseHead: code });
      origin.resetStats();
      const src = await openHttpSource(origin.url(MEDIUM), client());
      assert.equal(src.size, medium.length);
      assert.ok(src.etag, "src.etag");
      assert.deepEqual(
        origin.log.map((e) => [e.method, e.range, e.status]),
        [
          ["HEAD", undefined, code],
          ["GET", "bytes=0-0", 206],
        ],
      );
      assert.deepEqual(await src.read(10, 20), medium.subarray(10, 30));
    }
  });

  test("redirects are followed, every hop checked, the target remembered for a TTL", async () => {
    const seen: string[] = [];
    const c = client({ resolvedUrlTtlMs: 1000, checkUrl: (u) => void seen.push(u.href) });
    const url = origin.redirectUrl(MEDIUM, 2);
    const src = await openHttpSource(url, c);
    assert.equal(src.size, medium.length);
    assert.equal(origin.stats.redirects, 2);
    assert.equal(src.resolvedUrl, origin.url(MEDIUM));
    assert.deepEqual(seen, [url, origin.redirectUrl(MEDIUM, 1), origin.url(MEDIUM)]);
    for (let i = 0; i < 5; i++) assert.deepEqual(await src.read(i * 1000, 100), medium.subarray(i * 1000, i * 1000 + 100));
    assert.equal(origin.stats.redirects, 2, "cached target is reused");
    assert.equal(src.stats.redirects, 2);
    await new Promise((r) => setTimeout(r, 1100));
    assert.deepEqual(await src.read(50, 10), medium.subarray(50, 60));
    assert.equal(origin.stats.redirects, 4, "expired target is resolved again");
    // a second source for the same URL shares the client's cache
    origin.resetStats();
    const src2 = await openHttpSource(url, c);
    assert.equal(src2.size, medium.length);
    assert.equal(origin.stats.redirects, 0);
  });

  test("more than 5 redirects → TooManyRedirectsError; a refused hop stops the chain", async () => {
    await assert.rejects(openHttpSource(origin.redirectUrl(MEDIUM, 6), client()), TooManyRedirectsError);
    const src = await openHttpSource(origin.redirectUrl(MEDIUM, 5), client());
    assert.equal(src.size, medium.length);
    origin.resetStats();
    class Refused extends Error {}
    const c = client({
      checkUrl: (u) => {
        if (!u.pathname.startsWith("/redirect/")) throw new Refused(`refused ${u.href}`);
      },
    });
    await assert.rejects(openHttpSource(origin.redirectUrl(MEDIUM, 1), c), Refused);
    assert.ok(
      origin.log.every((e) => e.path.startsWith("redirect/")),
      "the refused target was never requested",
    );
  });

  test("403 from the remembered target → re-resolve once from the original URL", async () => {
    origin.setFaults({ signedRedirects: { ttlMs: 1000 }, refuseHead: 403 });
    const src = await openHttpSource(origin.redirectUrl(MEDIUM), client());
    assert.equal(src.size, medium.length);
    assert.deepEqual(await src.read(0, 100), medium.subarray(0, 100));
    const before = origin.stats.redirects;
    await new Promise((r) => setTimeout(r, 1100)); // presigned target expires
    assert.deepEqual(await src.read(100, 100), medium.subarray(100, 200));
    assert.equal(origin.stats.redirects, before + 1);
    assert.equal(origin.stats.faults.expiredSignature, 1);
    // a 403 that re-resolving does not cure → SourceForbiddenError
    origin.updateFaults({ forbidden: 100 });
    const err = await within(
      5000,
      src.read(200, 100).then(
        () => undefined,
        (e: unknown) => e,
      ),
    );
    assert.ok(err instanceof SourceForbiddenError, String(err));
    assert.equal(err.statusHint, 403);
  });

  test("latency is tolerated", async () => {
    origin.setFaults({ latencyMs: 80 });
    const src = await openHttpSource(origin.url(MEDIUM), client());
    const t = Date.now();
    assert.deepEqual(await src.read(500, 500), medium.subarray(500, 1000));
    assert.ok(Date.now() - t >= 70, "Date.now() - t >= 70");
  });

  test("connection reset mid-body → retried, correct bytes", async () => {
    const c = client();
    const src = await openHttpSource(origin.url(MEDIUM), c);
    origin.setFaults({ resetMidBody: { count: 2 } });
    const b = await within(10_000, src.read(0, 300_000));
    assert.ok(Buffer.from(b).equals(Buffer.from(medium.subarray(0, 300_000))), "Buffer.from(b).equals(Buffer.from(medium.subarray(0, 300_000)))");
    assert.equal(origin.stats.faults.resetMidBody, 2);
    assert.ok(src.stats.retries >= 2, "src.stats.retries >= 2");
    assert.ok(c.stats.retries >= 2, "c.stats.retries >= 2");
    // random resets (seeded) over many concurrent reads: which read draws which reset depends on
    // arrival order, so allow enough retries that 0.3^(retries+1) per read cannot plausibly fail
    origin.setFaults({ resetMidBody: { probability: 0.3, seed: 5 } });
    const patient = await openHttpSource(origin.url(MEDIUM), client({ retries: 12 }));
    const rnd = seededRandom(9);
    const ranges = Array.from({ length: 25 }, () => ({ offset: Math.floor(rnd() * 2_000_000), length: 20_000 }));
    const got = await within(
      20_000,
      Promise.all(ranges.map((r) => patient.read(r.offset, r.length))),
    );
    ranges.forEach((r, i) => assert.ok(Buffer.from(got[i]!).equals(Buffer.from(medium.subarray(r.offset, r.offset + r.length))), "Buffer.from(got[i]!).equals(Buffer.from(medium.subarray(r.offset, r.offset + r.length)))"));
    assert.ok((origin.stats.faults.resetMidBody ?? 0) > 0, "(origin.stats.faults.resetMidBody ?? 0) > 0");
  });

  test("500s → retried; persistent 500 → OriginError after bounded retries", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.setFaults({ error500: 3 });
    assert.deepEqual(await src.read(10, 10), medium.subarray(10, 20));
    assert.equal(src.stats.retries, 3);
    origin.setFaults({ error500: 1000 });
    origin.resetStats();
    const err = await within(5000, src.read(20, 10).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof OriginError, String(err));
    assert.equal(err.status, 500);
    assert.equal(err.statusHint, 502);
    assert.equal(origin.stats.requests, 4, "1 attempt + 3 retries");
  });

  test("429 with Retry-After → retried", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.setFaults({ status: { code: 429, count: 2, retryAfter: 0 } });
    assert.deepEqual(await src.read(10, 10), medium.subarray(10, 20));
  });

  test("404 → SourceNotFoundError (at open and on read)", async () => {
    const err = await openHttpSource(origin.url("no/such.h5"), client()).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SourceNotFoundError, String(err));
    assert.equal(err.statusHint, 404);
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.setFaults({ notFound: true });
    await assert.rejects(src.read(0, 10), SourceNotFoundError);
  });

  test("Range ignored on a large file → RangeNotSupportedError without downloading it", async () => {
    const c = client({ smallFileLimit: 1024 * 1024 });
    const src = await openHttpSource(origin.url(LARGE), c);
    origin.setFaults({ ignoreRange: true });
    const before = c.stats.bytes;
    const err = await within(5000, src.read(1000, 100).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof RangeNotSupportedError, String(err));
    assert.match(err.message, /origin does not support Range requests/);
    assert.ok(c.stats.bytes - before < 256 * 1024, `read ${c.stats.bytes - before} bytes`);
    // HEAD refused too: detected at open
    origin.setFaults({ ignoreRange: true, refuseHead: 403 });
    await assert.rejects(openHttpSource(origin.url(LARGE), c), RangeNotSupportedError);
  });

  test("Range ignored on a small file → whole body kept once", async () => {
    origin.setFaults({ ignoreRange: true });
    const src = await openHttpSource(origin.url(small.rel), client());
    const a = await src.read(0, 16);
    const b = await src.read(512, 8);
    assert.deepEqual(a, small.bytes.subarray(0, 16));
    assert.deepEqual(b, small.bytes.subarray(512, 520));
    assert.ok(src.isBuffered, "src.isBuffered");
    assert.equal(origin.stats.gets, 1);
    // HEAD refused as well: the 0-0 probe's 200 body is the file
    origin.setFaults({ ignoreRange: true, refuseHead: 405 });
    origin.resetStats();
    const src2 = await openHttpSource(origin.url(small.rel), client());
    assert.equal(src2.size, small.bytes.length);
    assert.deepEqual(await src2.read(100, 50), small.bytes.subarray(100, 150));
    assert.equal(origin.stats.gets, 1);
  });

  test("truncated body → retried; always truncated → TruncatedBodyError", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.setFaults({ truncate: { count: 2 } });
    const b = await src.read(0, 100_000);
    assert.ok(Buffer.from(b).equals(Buffer.from(medium.subarray(0, 100_000))), "Buffer.from(b).equals(Buffer.from(medium.subarray(0, 100_000)))");
    origin.setFaults({ truncate: {} });
    const err = await within(5000, src.read(0, 100_000).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof TruncatedBodyError, String(err));
    assert.equal(err.statusHint, 502);
  });

  test("slow drip → request timeout → retried; always slow → OriginTimeoutError", async () => {
    const c = client({ requestTimeoutMs: 400, retries: 1 });
    const src = await openHttpSource(origin.url(MEDIUM), c);
    origin.setFaults({ drip: { bytes: 16, intervalMs: 50, count: 1 } });
    const t0 = Date.now();
    assert.deepEqual(await within(5000, src.read(0, 4096)), medium.subarray(0, 4096));
    assert.ok(Date.now() - t0 >= 350, "Date.now() - t0 >= 350");
    origin.setFaults({ drip: { bytes: 16, intervalMs: 50 } });
    const t1 = Date.now();
    const err = await within(5000, src.read(4096, 4096).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof OriginTimeoutError, String(err));
    assert.equal(err.statusHint, 504);
    assert.ok(Date.now() - t1 < 3000, "Date.now() - t1 < 3000");
  });

  test("hang → headers timeout → retried; always hanging → OriginTimeoutError", async () => {
    const c = client({ headersTimeoutMs: 300, retries: 2 });
    const src = await openHttpSource(origin.url(MEDIUM), c);
    origin.setFaults({ hang: { count: 1 } });
    assert.deepEqual(await within(5000, src.read(0, 64)), medium.subarray(0, 64));
    origin.setFaults({ hang: {} });
    const t = Date.now();
    const err = await within(5000, src.read(64, 64).then(() => undefined, (e: unknown) => e));
    assert.ok(err instanceof OriginTimeoutError, String(err));
    assert.ok(Date.now() - t < 3000, "Date.now() - t < 3000");
    // a hanging HEAD at open falls back to GET, which also hangs → timeout error
    await assert.rejects(within(8000, openHttpSource(origin.url(MEDIUM), c)), OriginTimeoutError);
  });

  test("ETag change → SourceChangedError", async () => {
    const src = await openHttpSource(origin.url(MEDIUM), client());
    origin.setFaults({ etag: '"something-else"' });
    const err = await src.read(0, 10).then(() => undefined, (e: unknown) => e);
    assert.ok(err instanceof SourceChangedError, String(err));
    assert.equal(err.statusHint, 409);
    const lax = await openHttpSource(origin.url(MEDIUM), client(), { checkEtag: false });
    origin.setFaults({ etag: '"third"' });
    assert.deepEqual(await lax.read(0, 10), medium.subarray(0, 10));
  });

  test("in-flight limit and connections per origin are respected", async () => {
    origin.setFaults({ latencyMs: 40 });
    const c = client({ maxInFlight: 3 });
    const src = await openHttpSource(origin.url(MEDIUM), c);
    origin.resetStats();
    await Promise.all(Array.from({ length: 24 }, (_, i) => src.read(i * 10_000, 1000)));
    assert.equal(origin.stats.gets, 24);
    assert.ok(origin.stats.maxConcurrent <= 3, `max concurrent ${origin.stats.maxConcurrent}`);
    assert.ok(origin.stats.maxConcurrent >= 2, "origin.stats.maxConcurrent >= 2");
    const c2 = client({ maxInFlight: 50, maxConnectionsPerOrigin: 2 });
    const src2 = await openHttpSource(origin.url(MEDIUM), c2);
    origin.resetStats();
    await Promise.all(Array.from({ length: 16 }, (_, i) => src2.read(i * 10_000, 1000)));
    assert.ok(origin.stats.maxConcurrent <= 2, `max concurrent ${origin.stats.maxConcurrent}`);
    assert.ok(origin.stats.connections <= 2, `connections ${origin.stats.connections}`);
  });

  test("counters report requests and bytes", async () => {
    const c = client();
    const src = await openHttpSource(origin.url(MEDIUM), c);
    await src.read(0, 1000);
    await src.read(5000, 2000);
    assert.equal(src.stats.requests, 3);
    assert.equal(src.stats.bytes, 3000);
    assert.equal(c.stats.requests, 3);
    assert.equal(c.stats.bytes, 3000);
  });

  test("API key goes to API hosts only, never to the redirect target", async () => {
    const api = await startRangeOrigin({ root: corpus, redirectBase: origin.baseUrl });
    try {
      const c = client({ authToken: "secret", authHosts: [api.baseUrl] });
      const src = await openHttpSource(api.redirectUrl(MEDIUM), c);
      assert.deepEqual(await src.read(0, 10), medium.subarray(0, 10));
      assert.ok(api.log.length > 0, "api.log.length > 0");
      assert.ok(api.log.every((e) => e.authorization === "token secret"), "api.log.every((e) => e.authorization === \"token secret\")");
      assert.ok(origin.log.length > 0, "origin.log.length > 0");
      assert.ok(origin.log.every((e) => e.authorization === undefined), "origin.log.every((e) => e.authorization === undefined)");
    } finally {
      await api.close();
    }
  });

  test("auth header decision", () => {
    const key = "k";
    assert.deepEqual(authHeadersFor("https://api.dandiarchive.org/api/assets/x/download/", key), {
      authorization: "token k",
    });
    assert.deepEqual(authHeadersFor("https://api-staging.dandiarchive.org/api/dandisets/", key), {
      authorization: "token k",
    });
    assert.deepEqual(authHeadersFor("http://api.dandiarchive.org/api/assets/x/download/", key), {});
    assert.deepEqual(authHeadersFor("https://dandiarchive.s3.amazonaws.com/blobs/abc?X-Amz-Signature=1", key), {});
    assert.deepEqual(authHeadersFor("https://api.dandiarchive.org.evil.com/", key), {});
    assert.deepEqual(authHeadersFor("https://evil.com/api.dandiarchive.org", key), {});
    assert.deepEqual(authHeadersFor("https://api.dandiarchive.org/", undefined), {});
    assert.equal(isAuthHost("https://API.DandiArchive.org/x"), true);
    assert.equal(isAuthHost("https://user:pw@api.dandiarchive.org/x"), false);
    assert.equal(isAuthHost("https://dandi.example.org/x", ["dandi.example.org"]), true);
    assert.equal(isAuthHost("https://api.dandiarchive.org/x", ["dandi.example.org"]), false);
    assert.equal(isAuthHost("http://127.0.0.1:8080/x", ["http://127.0.0.1:8080"]), true);
    assert.equal(isAuthHost("http://127.0.0.1:8081/x", ["http://127.0.0.1:8080"]), false);
    assert.equal(isDandiAssetDownloadUrl("https://api.dandiarchive.org/api/assets/0a1b-2c/download/"), true);
    assert.equal(isDandiAssetDownloadUrl("https://api.dandiarchive.org/api/assets/0a1b-2c/"), false);
  });

  test("resolved-URL TTL: DANDI asset URLs longer, capped by a presigned expiry", () => {
    const c = client({ resolvedUrlTtlMs: 1000 });
    const amzDate = new Date(Date.now()).toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
    const s3 = `https://bucket.s3.amazonaws.com/blobs/x?X-Amz-Date=${amzDate}&X-Amz-Expires=3600&X-Amz-Signature=abc`;
    const exp = presignedExpiry(s3)!;
    assert.ok(Math.abs(exp - (Date.now() + 3600_000)) < 5000, "Math.abs(exp - (Date.now() + 3600_000)) < 5000");
    c.rememberResolved("https://api.dandiarchive.org/api/assets/a/download/", s3);
    assert.equal(c.lookupResolved("https://api.dandiarchive.org/api/assets/a/download/"), s3);
    const expired = s3.replace("X-Amz-Expires=3600", "X-Amz-Expires=30");
    c.rememberResolved("https://api.dandiarchive.org/api/assets/b/download/", expired);
    assert.equal(c.lookupResolved("https://api.dandiarchive.org/api/assets/b/download/"), undefined);
    assert.equal(c.options.dandiResolvedUrlTtlMs, 50 * 60_000);
  });

  test("Content-Range parsing", () => {
    assert.deepEqual(parseContentRange("bytes 0-0/100"), { start: 0, end: 0, total: 100 });
    assert.deepEqual(parseContentRange("bytes 5-9/*"), { start: 5, end: 9 });
    assert.deepEqual(parseContentRange("bytes */42"), { total: 42 });
    assert.equal(parseContentRange("bytes 9-5/100"), undefined);
    assert.equal(parseContentRange("bytes 0-100/100"), undefined);
    assert.equal(parseContentRange("items 0-1/2"), undefined);
  });

  test("looksLikeHdf5: signature at 0, 512, 4096; not in JSON", async () => {
    const c = client();
    assert.equal(await looksLikeHdf5(await openHttpSource(origin.url(MEDIUM), c)), true);
    assert.equal(await findHdf5Signature(await openHttpSource(origin.url(UB512), c)), 512);
    assert.equal(await findHdf5Signature(await openHttpSource(origin.url(UB4096), c)), 4096);
    assert.equal(await looksLikeHdf5(await openHttpSource(origin.url(NOT_HDF5), c)), false);
    assert.equal(await looksLikeHdf5(new MemoryByteSource(new Uint8Array(4))), false);
  });

  test("typed errors carry statusHint and redact query strings", async () => {
    const e = new SourceForbiddenError(403, "https://b.s3.amazonaws.com/x?X-Amz-Signature=secret");
    assert.ok(e instanceof HttpSourceError, "e instanceof HttpSourceError");
    assert.equal(e.statusHint, 403);
    assert.ok(!e.message.includes("secret"), "!e.message.includes(\"secret\")");
    const src = await openHttpSource(origin.url(MEDIUM), client());
    await src.close();
    await assert.rejects(src.read(0, 1), SourceClosedError);
  });
});
