/**
 * Remote indexing against a misbehaving origin (loopback, fault injection):
 * every fault ends in the correct index (after retries) or a clear, typed
 * error within a bounded time, and the pool keeps working afterwards.
 */
import assert from "node:assert/strict";
import path from "node:path";
import { after, before, test } from "node:test";
import {
  HttpSourceError,
  OriginError,
  OriginTimeoutError,
  RangeNotSupportedError,
  SourceChangedError,
  SourceNotFoundError,
  TruncatedBodyError,
} from "../src/hdf5/httpByteSource.ts";
import { createIndexBuilder, type RemoteIndexBuilder } from "../src/index/builder.ts";
import { NotHdf5Error, indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";
import { corpusDir } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin, type RangeOriginFaults } from "./support/rangeOrigin.ts";

/** A real NWB file (~270 KB: several blocks, many objects). */
const FILE = "dandi-cli/_history/82e182029d/dandi/tests/data/dandifiles/sub-anm369963/sub-anm369963_ses-20170228.nwb";
const OPTS = { chunksThreshold: 1000, splitBytes: 20_000_000 };

let origin: RangeOrigin;
/** Retries generously: faults that stop must end in a correct index. */
let patient: RemoteIndexBuilder;
/** Retries little, times out fast: faults that persist must end in a clear error quickly. */
let strict: RemoteIndexBuilder;
const expected = new Map<string, string>();

async function localText(rel: string, url: string): Promise<string> {
  const key = `${rel} ${url}`;
  if (!expected.has(key)) {
    expected.set(key, stringifyPython((await indexLocalFile(path.join(corpusDir, rel), { url })) as never));
  }
  return expected.get(key)!;
}

async function indexRemote(builder: RemoteIndexBuilder, url: string): Promise<string> {
  const info = await builder.probe(url);
  const r = await builder.build(info, OPTS);
  return new TextDecoder().decode(r.json);
}

/** Under `faults`, the index is the same as without. */
async function expectCorrect(faults: RangeOriginFaults, maxMs = 20_000): Promise<void> {
  const url = origin.url(FILE);
  const want = await localText(FILE, url);
  origin.setFaults(faults);
  const t0 = performance.now();
  try {
    const got = await indexRemote(patient, url);
    assert.ok(got === want, "remote index differs from the local one");
  } finally {
    origin.setFaults({});
  }
  const ms = performance.now() - t0;
  assert.ok(ms < maxMs, `took ${Math.round(ms)} ms`);
}

/** Under `faults` (set after the probe when `afterProbe`), the build fails with `type` within `maxMs`. */
async function expectError(
  faults: RangeOriginFaults,
  type: new (...args: never[]) => Error,
  opts: { afterProbe?: boolean; maxMs?: number; builder?: RemoteIndexBuilder; file?: string } = {},
): Promise<Error> {
  const builder = opts.builder ?? strict;
  const url = origin.url(opts.file ?? FILE);
  const t0 = performance.now();
  let err: unknown;
  try {
    if (opts.afterProbe) {
      const info = await builder.probe(url);
      origin.setFaults(faults);
      await builder.build(info, OPTS);
    } else {
      origin.setFaults(faults);
      await indexRemote(builder, url);
    }
  } catch (e) {
    err = e;
  } finally {
    origin.setFaults({});
  }
  const ms = performance.now() - t0;
  assert.ok(err instanceof type, `expected ${type.name}, got ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
  assert.ok(ms < (opts.maxMs ?? 10_000), `took ${Math.round(ms)} ms`);
  return err;
}

before(async () => {
  origin = await startRangeOrigin({ root: corpusDir });
  patient = createIndexBuilder({
    poolSize: 2,
    http: { headersTimeoutMs: 1000, bodyTimeoutMs: 1000, retries: 10, retryBaseDelayMs: 10, retryMaxDelayMs: 100 },
  });
  strict = createIndexBuilder({
    poolSize: 1,
    http: { headersTimeoutMs: 400, bodyTimeoutMs: 400, requestTimeoutMs: 2000, retries: 1, retryBaseDelayMs: 10, retryMaxDelayMs: 50 },
  });
});

after(async () => {
  await Promise.all([patient?.close(), strict?.close()]);
  await origin?.close();
});

// ---- faults that stop: the correct index --------------------------------------------------

test("latency: correct index; the build reports its round trips", async () => {
  const url = origin.url(FILE);
  const want = await localText(FILE, url);
  origin.setFaults({ latencyMs: 15 });
  try {
    const info = await patient.probe(url);
    const r = await patient.build(info, OPTS);
    assert.ok(new TextDecoder().decode(r.json) === want);
    assert.ok(r.requests > 0 && r.bytesFetched > 0);
    assert.ok(r.stats.session.syncRequests > 0, "phase A made blocking requests");
    assert.ok(r.stats.session.roundTrips <= r.stats.session.syncRequests);
    assert.ok(r.stats.prefetch !== null && r.stats.prefetch.objects > 0, "the prefetcher crawled the file");
  } finally {
    origin.setFaults({});
  }
});

test("connection resets mid-body: retried, correct index", async () => {
  origin.resetStats();
  await expectCorrect({ resetMidBody: { count: 3 } });
  assert.equal(origin.stats.faults.resetMidBody, 3);
  await expectCorrect({ resetMidBody: { probability: 0.2, seed: 11 } });
});

test("500s: retried, correct index", async () => {
  origin.resetStats();
  await expectCorrect({ error500: 3 });
  assert.equal(origin.stats.faults.error500, 3);
});

test("503 with Retry-After: retried, correct index", async () => {
  await expectCorrect({ status: { code: 503, count: 2, retryAfter: 0 } });
});

test("truncated bodies: retried, correct index", async () => {
  origin.resetStats();
  await expectCorrect({ truncate: { count: 3, fraction: 0.3 } });
  assert.equal(origin.stats.faults.truncate, 3);
});

test("slow drip: correct index", async () => {
  await expectCorrect({ drip: { bytes: 2048, intervalMs: 1, count: 6 } });
});

test("hang (a few requests): timed out, retried, correct index", async () => {
  origin.resetStats();
  await expectCorrect({ hang: { count: 2 } });
  assert.equal(origin.stats.faults.hang, 2);
});

test("no Range support on a small file: whole body kept, correct index", async () => {
  await expectCorrect({ ignoreRange: true });
});

test("redirects: followed, refs keep the URL that was given", async () => {
  const url = origin.redirectUrl(FILE, 2);
  const want = await localText(FILE, url);
  assert.ok((await indexRemote(patient, url)) === want);
});

// ---- faults that persist: a clear error, in bounded time ------------------------------------

test("404: SourceNotFoundError (at the probe, and when the file goes away after it)", async () => {
  const e1 = await expectError({ notFound: true }, SourceNotFoundError);
  assert.equal((e1 as HttpSourceError).statusHint, 404);
  await expectError({ notFound: true }, SourceNotFoundError, { afterProbe: true });
});

test("500 forever: OriginError after the retries", async () => {
  const e = await expectError({ error500: 1_000_000 }, OriginError);
  assert.equal((e as OriginError).status, 500);
});

test("hang forever: OriginTimeoutError (504) in bounded time", async () => {
  const e = await expectError({ hang: {} }, OriginTimeoutError, { maxMs: 8000 });
  assert.equal((e as HttpSourceError).statusHint, 504);
});

test("truncated bodies forever (phase A's reads fail in the worker): TruncatedBodyError", async () => {
  await expectError({ truncate: { fraction: 0.5 } }, TruncatedBodyError, { afterProbe: true });
});

test("resets forever: a clear network error", async () => {
  const e = await expectError({ resetMidBody: {} }, HttpSourceError, { afterProbe: true });
  assert.ok(e instanceof TruncatedBodyError || e.name === "OriginNetworkError", `${e.name}: ${e.message}`);
});

test("slow drip forever: OriginTimeoutError", async () => {
  await expectError({ drip: { bytes: 1, intervalMs: 1000 } }, OriginTimeoutError, { afterProbe: true, maxMs: 8000 });
});

test("no Range support on a file too large to buffer: RangeNotSupportedError", async () => {
  const small = createIndexBuilder({ poolSize: 1, http: { smallFileLimit: 4096, retries: 0 } });
  try {
    await expectError({ ignoreRange: true }, RangeNotSupportedError, { builder: small });
    await expectError({ ignoreRange: true }, RangeNotSupportedError, { builder: small, afterProbe: true });
  } finally {
    await small.close();
  }
});

test("the file changes between probe and build: SourceChangedError", async () => {
  await expectError({ etag: '"something-else"' }, SourceChangedError, { afterProbe: true });
});

test("not an HDF5 file: NotHdf5Error", async () => {
  await expectError({}, NotHdf5Error, { file: "features.json" });
});

test("after all that, both pools are whole and index correctly", async () => {
  assert.equal(patient.pool.threads, 2);
  assert.equal(strict.pool.threads, 1);
  const url = origin.url(FILE);
  const want = await localText(FILE, url);
  assert.ok((await indexRemote(strict, url)) === want);
  assert.ok((await indexRemote(patient, url)) === want);
});

test("checkUrl (the service's allow-list) is applied to the URL and to every redirect target", async () => {
  class Refused extends Error {}
  const seen: string[] = [];
  const builder = createIndexBuilder({
    poolSize: 1,
    checkUrl: (u) => {
      seen.push(u.pathname);
      if (u.pathname.includes("tgroup")) throw new Refused(`refused ${u.pathname}`);
    },
  });
  try {
    const refused = "h5serv/test/test_files/tgroup.h5";
    await assert.rejects(builder.probe(origin.url(refused)), Refused);
    await assert.rejects(builder.probe(origin.redirectUrl(refused, 1)), Refused);
    assert.ok(seen.some((p) => p.startsWith("/redirect/")), "the redirecting URL was checked too");
    const url = origin.url(FILE);
    assert.ok((await indexRemote(builder, url)) === (await localText(FILE, url)));
  } finally {
    await builder.close();
  }
});
