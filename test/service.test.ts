/**
 * The service end to end: a real server on 127.0.0.1 with the real index
 * builder, against the loopback range origin serving the corpus.
 *
 * Cache tiers (build → memory → disk after a restart), single flight (100
 * concurrent requests → one build), changed sources, HEAD, ETag/304,
 * gzip/brotli, 202 + status polling, the bounded queue, load shedding,
 * operations routes and graceful close.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { brotliDecompressSync, gunzipSync } from "node:zlib";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import type { ServiceConfig } from "../src/config.ts";
import { buildServer } from "../src/server.ts";
import { requireCorpus } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { testConfig, listenLoopback } from "./support/service.ts";

// small, real NWB/HDF5 files of the corpus
const FILE_A = "pynwb/tests/back_compat/1.0.2_nwbfile.nwb";
const FILE_B = "pynwb/tests/back_compat/1.0.2_str_experimenter.nwb";
const FILE_C = "pynwb/tests/back_compat/1.0.2_str_pub.nwb";
const FILE_D = "matnwb/_history/e7401f8e7d/tutorials/ecephys_tutorial.nwb";

interface Running {
  app: FastifyInstance;
  base: string;
  config: ServiceConfig;
}

async function start(config: ServiceConfig): Promise<Running> {
  const app = await buildServer(config);
  return { app, base: await listenLoopback(app), config };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

async function call(base: string, pathAndQuery: string, opts: { method?: "GET" | "HEAD"; headers?: Record<string, string> } = {}): Promise<Answer> {
  const res = await request(base + pathAndQuery, { method: opts.method ?? "GET", headers: opts.headers ?? {} });
  const body = Buffer.from(await res.body.arrayBuffer());
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(", ") : v;
  return { status: res.statusCode, headers, body, json: <T>() => JSON.parse(body.toString("utf8")) as T };
}

const lindi = (url: string, extra = "") => `/lindi?url=${encodeURIComponent(url)}${extra}`;

/** Value of one sample of a Prometheus text exposition (0 when absent). */
async function metric(base: string, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = (await call(base, "/metrics")).body.toString("utf8");
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split("\n")) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? "").split(",").filter(Boolean);
    if (want.every((w) => have.includes(w)) && have.length === want.length) return Number(m[3]);
  }
  return 0;
}

async function pollBuild(base: string, statusUrl: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const t0 = Date.now();
  for (;;) {
    const s = await call(base, statusUrl);
    assert.equal(s.status, 200, s.body.toString());
    const body = s.json();
    if (body.state === "succeeded" || body.state === "failed") return body;
    if (Date.now() - t0 > timeoutMs) throw new Error(`build still ${String(body.state)} after ${timeoutMs} ms`);
    await sleep(50);
  }
}

let origin: RangeOrigin;
const dirs: string[] = [];
async function cacheDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "lindi-service-test-"));
  dirs.push(d);
  return d;
}

before(async () => {
  origin = await startRangeOrigin({ root: requireCorpus() });
});
after(async () => {
  await origin.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

describe("cache tiers, single flight, validators", () => {
  let dir: string;
  let s: Running;
  before(async () => {
    dir = await cacheDir();
    s = await start(testConfig(dir));
  });
  after(async () => {
    await s.app.close();
  });

  test("first call builds, second is served from memory, after a restart from disk", async () => {
    const url = origin.url(FILE_A);
    const first = await call(s.base, lindi(url));
    assert.equal(first.status, 200, first.body.toString());
    assert.equal(first.headers["content-type"], "application/json");
    assert.equal(first.headers["x-lindi-cache"], "build");
    const doc = first.json<{ refs: Record<string, unknown>; version: number }>();
    assert.equal(doc.version, 1);
    assert.ok(doc.refs[".zgroup"], "a LINDI document");
    assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), 1);
    assert.ok((await metric(s.base, "lindi_origin_bytes_fetched_total")) > 0);

    const second = await call(s.base, lindi(url));
    assert.equal(second.status, 200);
    assert.equal(second.headers["x-lindi-cache"], "memory");
    assert.deepEqual(second.body, first.body);
    assert.equal(await metric(s.base, "lindi_cache_hits_total", { tier: "memory" }), 1);
    assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), 1);

    // restart: a new server instance on the same cache directory
    await s.app.close();
    s = await start(testConfig(dir));
    const third = await call(s.base, lindi(url));
    assert.equal(third.status, 200);
    assert.equal(third.headers["x-lindi-cache"], "disk");
    assert.deepEqual(third.body, first.body);
    assert.equal(third.headers.etag, first.headers.etag);
    const fourth = await call(s.base, lindi(url));
    assert.equal(fourth.headers["x-lindi-cache"], "memory");
    assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), 0, "nothing rebuilt after the restart");
    assert.equal(await metric(s.base, "lindi_cache_hits_total", { tier: "disk" }), 1);
  });

  test("100 concurrent identical requests share one build", async () => {
    const url = origin.url(FILE_B);
    origin.resetStats();
    const before = await metric(s.base, "lindi_builds_total", { outcome: "success" });
    const answers = await Promise.all(Array.from({ length: 100 }, () => call(s.base, lindi(url, "&chunksThreshold=7"))));
    for (const a of answers) assert.equal(a.status, 200);
    const bodies = new Set(answers.map((a) => a.body.toString("base64")));
    assert.equal(bodies.size, 1, "every client got the same index");
    assert.equal((await metric(s.base, "lindi_builds_total", { outcome: "success" })) - before, 1, "exactly one build");
    assert.equal(answers.filter((a) => a.headers["x-lindi-cache"] === "build").length >= 1, true);
    // the origin saw one build's requests plus probes, not 100 builds'
    const single = origin.stats.gets;
    const again = await call(s.base, lindi(url, "&chunksThreshold=8")); // one more build, alone
    assert.equal(again.status, 200);
    const oneBuildGets = origin.stats.gets - single;
    assert.ok(single <= oneBuildGets + 2, `100 requests made ${single} GETs at the origin; one build makes ${oneBuildGets}`);
  });

  test("a changed source (new ETag) is rebuilt; an unchanged one never is", async () => {
    const url = origin.url(FILE_C);
    const v1 = await call(s.base, lindi(url));
    assert.equal(v1.status, 200);
    assert.equal(v1.headers["x-lindi-cache"], "build");
    const built = await metric(s.base, "lindi_builds_total", { outcome: "success" });

    origin.setFaults({ etag: '"changed-v2"' });
    try {
      const v2 = await call(s.base, lindi(url));
      assert.equal(v2.status, 200);
      assert.equal(v2.headers["x-lindi-cache"], "build", "new validator → new key → rebuilt");
      assert.notEqual(v2.headers["x-lindi-key"], v1.headers["x-lindi-key"]);
      const v2again = await call(s.base, lindi(url));
      assert.equal(v2again.headers["x-lindi-cache"], "memory");
      // HEAD for the changed source sees the new version cached
      assert.equal((await call(s.base, lindi(url), { method: "HEAD" })).status, 200);
    } finally {
      origin.setFaults({});
    }
    const back = await call(s.base, lindi(url));
    assert.equal(back.headers["x-lindi-cache"], "memory", "the original version is still cached");
    assert.equal(back.headers["x-lindi-key"], v1.headers["x-lindi-key"]);
    assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), built + 1);
  });

  test("HEAD: 404 when not cached (no build, no GET at the origin), 200 with GET's headers when cached", async () => {
    const url = origin.url(FILE_D);
    origin.resetStats();
    const builds = await metric(s.base, "lindi_builds_total", { outcome: "success" });
    const miss = await call(s.base, lindi(url), { method: "HEAD" });
    assert.equal(miss.status, 404);
    assert.equal(miss.body.byteLength, 0);
    await sleep(100);
    assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), builds, "HEAD never builds");
    assert.equal(origin.stats.gets, 0, "only the probe reached the origin");
    assert.ok(origin.stats.heads + origin.stats.gets <= 1);

    const got = await call(s.base, lindi(url), { headers: { "accept-encoding": "gzip" } });
    assert.equal(got.status, 200);
    const hit = await call(s.base, lindi(url), { method: "HEAD", headers: { "accept-encoding": "gzip" } });
    assert.equal(hit.status, 200);
    assert.equal(hit.body.byteLength, 0);
    assert.equal(hit.headers["content-length"], String(got.body.byteLength));
    assert.equal(hit.headers.etag, got.headers.etag);
    assert.equal(hit.headers["content-encoding"], "gzip");
    // other options are another index
    assert.equal((await call(s.base, lindi(url, "&splitBytes=none"), { method: "HEAD" })).status, 404);
  });

  test("ETag and If-None-Match → 304, for any coding of the same content", async () => {
    const url = origin.url(FILE_A);
    const plain = await call(s.base, lindi(url));
    assert.equal(plain.status, 200);
    const etag = plain.headers.etag!;
    assert.match(etag, /^"[0-9a-f]{32}"$/);
    const nm = await call(s.base, lindi(url), { headers: { "if-none-match": etag } });
    assert.equal(nm.status, 304);
    assert.equal(nm.body.byteLength, 0);
    assert.equal(nm.headers.etag, etag);
    const gz = await call(s.base, lindi(url), { headers: { "if-none-match": etag, "accept-encoding": "gzip" } });
    assert.equal(gz.status, 304);
    assert.equal(gz.headers.etag, etag.replace(/"$/, '-gzip"'));
    const stale = await call(s.base, lindi(url), { headers: { "if-none-match": '"0123"' } });
    assert.equal(stale.status, 200);
  });

  test("gzip and brotli when accepted (stored variants), identity otherwise", async () => {
    const url = origin.url(FILE_A);
    const plain = await call(s.base, lindi(url));
    assert.equal(plain.headers["content-encoding"], undefined);
    assert.equal(plain.headers.vary, "Accept-Encoding");
    const gz = await call(s.base, lindi(url), { headers: { "accept-encoding": "gzip" } });
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.deepEqual(gunzipSync(gz.body), plain.body);
    assert.ok(gz.body.byteLength < plain.body.byteLength);
    const br = await call(s.base, lindi(url), { headers: { "accept-encoding": "gzip, deflate, br" } });
    assert.equal(br.headers["content-encoding"], "br");
    assert.deepEqual(brotliDecompressSync(br.body), plain.body);
    const again = await call(s.base, lindi(url), { headers: { "accept-encoding": "br" } });
    assert.deepEqual(again.body, br.body, "the same stored bytes, not recompressed");
    assert.notEqual(br.headers.etag, gz.headers.etag);
  });

  test("the disk tier holds every index built here", async () => {
    const files = (await readdir(path.join(dir, "entries"), { recursive: true })).filter((f) => f.endsWith(".lindi"));
    assert.ok(files.length >= 5, `found ${files.length}`);
    assert.ok((await metric(s.base, "lindi_cache_entries", { tier: "disk" })) >= 5);
  });
});

describe("slow builds, bounded queue, load shedding, operations", () => {
  test("a slow build answers 202 with a status URL; polling it leads to the 200", async () => {
    const s = await start(testConfig(await cacheDir()));
    try {
      origin.setFaults({ latencyMs: 150 });
      const url = origin.url(FILE_D);
      const t0 = Date.now();
      const first = await call(s.base, lindi(url, "&wait=0&chunksThreshold=none"));
      assert.equal(first.status, 202, first.body.toString());
      assert.ok(Date.now() - t0 < 5000);
      const body = first.json<{ id: string; state: string; statusUrl: string; resultUrl: string; retryAfterSeconds: number }>();
      assert.match(body.id, /^[0-9a-f]{64}$/);
      assert.equal(body.statusUrl, `/builds/${body.id}`);
      assert.equal(first.headers.location, body.statusUrl);
      assert.ok(Number(first.headers["retry-after"]) >= 1);
      assert.ok(["queued", "running"].includes(body.state));

      // the build goes on without the client; a second client joins it (still building)
      const joined = await call(s.base, lindi(url, "&wait=0&chunksThreshold=none"));
      if (joined.status === 202) assert.equal(joined.json<{ id: string }>().id, body.id);

      const done = await pollBuild(s.base, body.statusUrl);
      assert.equal(done.state, "succeeded");
      assert.equal(done.chunksThreshold, null);
      origin.setFaults({});
      const result = await call(s.base, body.resultUrl);
      assert.equal(result.status, 200);
      assert.equal(result.headers["x-lindi-cache"], "memory");
      assert.equal(await metric(s.base, "lindi_builds_total", { outcome: "success" }), 1);

      // unknown and malformed build ids
      assert.equal((await call(s.base, `/builds/${"0".repeat(64)}`)).status, 404);
      assert.equal((await call(s.base, "/builds/nope")).status, 400);
      // a finished build's status survives a restart through the cache
      await s.app.close();
      const s2 = await start(testConfig(s.config.cacheDir));
      try {
        const st = await call(s2.base, body.statusUrl);
        assert.equal(st.status, 200);
        assert.equal(st.json<{ state: string }>().state, "succeeded");
      } finally {
        await s2.app.close();
      }
    } finally {
      origin.setFaults({});
      await s.app.close().catch(() => undefined);
    }
  });

  test("beyond the queue bound: 503 with Retry-After; queued builds still complete", async () => {
    const s = await start(testConfig(await cacheDir(), { poolSize: 1, buildQueueMax: 1 }));
    try {
      // slow bodies: builds take seconds, probes (HEAD / 1-byte reads) stay quick
      origin.setFaults({ bandwidthBytesPerSec: 4000 });
      const a = await call(s.base, lindi(origin.url(FILE_A), "&wait=0"));
      const b = await call(s.base, lindi(origin.url(FILE_B), "&wait=0"));
      assert.equal(a.status, 202);
      assert.equal(b.status, 202);
      assert.equal(b.json<{ state: string }>().state, "queued");
      assert.equal(await metric(s.base, "lindi_build_queue_depth"), 1);
      const c = await call(s.base, lindi(origin.url(FILE_C), "&wait=0"));
      assert.equal(c.status, 503, c.body.toString());
      assert.ok(Number(c.headers["retry-after"]) >= 1);
      assert.deepEqual(Object.keys(c.json()).sort(), ["error", "message", "statusCode"]);
      assert.equal(await metric(s.base, "lindi_builds_rejected_total", { reason: "queue_full" }), 1);
      // joining a queued build is not a new build: no 503
      assert.equal((await call(s.base, lindi(origin.url(FILE_B), "&wait=0"))).status, 202);
      origin.setFaults({});
      for (const r of [a, b]) {
        const done = await pollBuild(s.base, r.json<{ statusUrl: string }>().statusUrl);
        assert.equal(done.state, "succeeded");
      }
      assert.equal((await call(s.base, lindi(origin.url(FILE_C)))).status, 200, "accepted again once the queue drained");
    } finally {
      origin.setFaults({});
      await s.app.close();
    }
  });

  test("under memory pressure: 503 for the API, /healthz and /metrics still answer", async () => {
    const s = await start(testConfig(await cacheDir(), { maxHeapUsedBytes: 1 }));
    try {
      const t0 = Date.now();
      let ready = await call(s.base, "/readyz");
      while (ready.status === 200 && Date.now() - t0 < 5000) {
        await sleep(100);
        ready = await call(s.base, "/readyz");
      }
      assert.equal(ready.status, 503);
      assert.equal(ready.json<{ checks: { underPressure: boolean } }>().checks.underPressure, true);
      const api = await call(s.base, lindi(origin.url(FILE_A)));
      assert.equal(api.status, 503);
      assert.ok(api.headers["retry-after"]);
      assert.equal(api.json<{ statusCode: number }>().statusCode, 503);
      assert.equal((await call(s.base, "/healthz")).status, 200);
      assert.equal((await call(s.base, "/metrics")).status, 200);
    } finally {
      await s.app.close();
    }
  });

  test("operations: /healthz, /readyz, /metrics, request ids, JSON errors", async () => {
    const s = await start(testConfig(await cacheDir()));
    try {
      const h = await call(s.base, "/healthz", { headers: { "x-request-id": "abc-123" } });
      assert.equal(h.status, 200);
      assert.deepEqual(h.json(), { status: "ok" });
      assert.equal(h.headers["x-request-id"], "abc-123");
      assert.match((await call(s.base, "/healthz")).headers["x-request-id"] ?? "", /^[0-9a-f-]{36}$/);
      const r = await call(s.base, "/readyz");
      assert.equal(r.status, 200);
      assert.deepEqual(r.json(), { status: "ready", checks: { builder: true, cacheWritable: true, underPressure: false } });
      const m = await call(s.base, "/metrics");
      assert.match(m.headers["content-type"] ?? "", /^text\/plain/);
      const text = m.body.toString();
      for (const name of [
        "lindi_builds_total",
        "lindi_build_duration_seconds",
        "lindi_cache_hits_total",
        "lindi_origin_bytes_fetched_total",
        "lindi_build_queue_depth",
        "process_cpu_seconds_total",
      ]) {
        assert.match(text, new RegExp(`# TYPE ${name} `), name);
      }
      const nf = await call(s.base, "/nothing-here");
      assert.equal(nf.status, 404);
      assert.deepEqual(Object.keys(nf.json()).sort(), ["error", "message", "statusCode"]);
    } finally {
      await s.app.close();
    }
  });

  test("close: a request waiting for a build is answered (503), builds stop, the builder closes", async () => {
    const s = await start(testConfig(await cacheDir()));
    origin.setFaults({ latencyMs: 400 });
    try {
      const pending = call(s.base, lindi(origin.url(FILE_D), "&wait=60&splitBytes=12345"));
      // let the probe and the build start
      for (let i = 0; i < 100 && (await metric(s.base, "lindi_builds_running")) === 0; i++) await sleep(50);
      assert.equal(await metric(s.base, "lindi_builds_running"), 1);
      const closing = s.app.close();
      const answer = await pending;
      assert.equal(answer.status, 503);
      assert.ok(answer.headers["retry-after"]);
      await closing;
      // nothing half-built was cached
      const s2 = await start(testConfig(s.config.cacheDir));
      try {
        origin.setFaults({});
        assert.equal((await call(s2.base, lindi(origin.url(FILE_D), "&splitBytes=12345"), { method: "HEAD" })).status, 404);
      } finally {
        await s2.app.close();
      }
    } finally {
      origin.setFaults({});
    }
  });
});
