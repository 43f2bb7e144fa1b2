/**
 * Precompute jobs end to end: a real server on 127.0.0.1 with the real index
 * builder (wrapped to count builds), the loopback range origin serving corpus
 * NWB files, and a loopback stand-in for the DANDI API (paginated listing,
 * download endpoints that 302 to the origin).
 *
 * A dandiset job of 34 NWB assets completes into the mirror layout (progress
 * events in order, failing items reported with reasons, viewers get cache
 * hits, GET /mirror serves the tree); a second run skips everything; URL jobs
 * warm the cache; validation; cancel stops builds; a restart mid-job resumes
 * without touching finished items.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import http from "node:http";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { gunzipSync } from "node:zlib";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import type { ServiceConfig } from "../src/config.ts";
import type { IndexBuilder } from "../src/index/types.ts";
import { GENERATOR } from "../src/jobs/generator.ts";
import { buildServer, defaultBuilder, urlPolicyFor } from "../src/server.ts";
import { requireCorpus } from "./support/corpus.ts";
import { corpusAssets, startDandiApi, type DandiApi, type StandInAsset } from "./support/dandiApi.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { listenLoopback, testConfig as serviceTestConfig } from "./support/service.ts";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Running {
  app: FastifyInstance;
  base: string;
  /** Source URLs passed to builder.build, in order. */
  builds: string[];
}

function testConfig(dir: string, over: Partial<ServiceConfig> = {}): ServiceConfig {
  return serviceTestConfig(path.join(dir, "cache"), { jobConcurrency: 2, ...over });
}

async function start(config: ServiceConfig): Promise<Running> {
  const builds: string[] = [];
  const inner = defaultBuilder(config, urlPolicyFor(config));
  const builder: IndexBuilder = {
    probe: (url, signal) => inner.probe(url, signal),
    build: (source, opts, signal) => {
      builds.push(source.url);
      return inner.build(source, opts, signal);
    },
    close: () => inner.close(),
  };
  const app = await buildServer(config, { builder });
  return { app, base: await listenLoopback(app), builds };
}

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json(): Json;
}

async function call(base: string, p: string, opts: { method?: "GET" | "HEAD" | "POST" | "DELETE"; body?: unknown; headers?: Record<string, string> } = {}): Promise<Answer> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(opts.body);
  }
  const res = await request(base + p, { method: opts.method ?? "GET", headers, body });
  const buf = Buffer.from(await res.body.arrayBuffer());
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(", ") : v;
  return { status: res.statusCode, headers: h, body: buf, json: () => JSON.parse(buf.toString("utf8")) as Json };
}

/** Status of a GET whose path is sent exactly as given (no client-side dot-segment normalization). */
function rawStatus(base: string, rawPath: string): Promise<number> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    http
      .get({ host: u.hostname, port: u.port, path: rawPath, agent: false }, (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      })
      .on("error", reject);
  });
}

interface SseEvent {
  event: string;
  id: number;
  data: Json;
}

/** Reads an event stream to its end; `onEvent` may act on each event as it arrives. */
async function readEvents(base: string, p: string, onEvent?: (ev: SseEvent) => void | Promise<void>): Promise<SseEvent[]> {
  const res = await request(base + p, { headersTimeout: 60_000, bodyTimeout: 120_000 });
  assert.equal(res.statusCode, 200);
  assert.match(String(res.headers["content-type"]), /^text\/event-stream/);
  const out: SseEvent[] = [];
  let buf = "";
  for await (const chunk of res.body) {
    buf += (chunk as Buffer).toString("utf8");
    let i: number;
    while ((i = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const ev: Partial<SseEvent> & { event: string } = { event: "message" };
      for (const line of block.split("\n")) {
        if (line.startsWith(":")) continue;
        const c = line.indexOf(":");
        const field = line.slice(0, c);
        const value = line.slice(c + 1).trimStart();
        if (field === "event") ev.event = value;
        else if (field === "id") ev.id = Number(value);
        else if (field === "data") ev.data = JSON.parse(value) as Json;
      }
      if (ev.data === undefined) continue;
      out.push(ev as SseEvent);
      await onEvent?.(ev as SseEvent);
    }
  }
  return out;
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

const root = requireCorpus();
let origin: RangeOrigin;
let api: DandiApi;
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "lindi-jobs-test-"));
  dirs.push(d);
  return d;
}

// 000101: 32 good NWB assets, 2 failing NWB assets, 3 assets that are not NWB (left out)
let good101: StandInAsset[];
const MISSING = "8a1f0d2e-0000-4000-a000-000000000404";
const NOT_HDF5 = "8a1f0d2e-0000-4000-a000-000000000422";
let cancel102: StandInAsset[];
let restart103: StandInAsset[];

before(async () => {
  origin = await startRangeOrigin({ root });
  good101 = corpusAssets(root, (r) => origin.url(r), "jobs-101", 32);
  const assets101: StandInAsset[] = [
    ...good101.slice(0, 10),
    { asset_id: MISSING, path: "sub-x/sub-x_missing.nwb", size: 10, target: origin.url("no/such/file.nwb") },
    { asset_id: "8a1f0d2e-0000-4000-a000-00000000a001", path: "sub-x/sub-x_video.mp4", size: 10, target: origin.url("features.json") },
    ...good101.slice(10, 20),
    { asset_id: NOT_HDF5, path: "sub-x/sub-x_text.nwb", size: 10, target: origin.url("features.json") },
    { asset_id: "8a1f0d2e-0000-4000-a000-00000000a002", path: "dataset_description.json", size: 10, target: origin.url("features.json") },
    ...good101.slice(20),
    { asset_id: "8a1f0d2e-0000-4000-a000-00000000a003", path: "sub-x/sub-x.nwb.zarr", size: 10, target: origin.url("features.json") },
  ];
  cancel102 = corpusAssets(root, (r) => origin.url(r), "jobs-102", 36);
  restart103 = corpusAssets(root, (r) => origin.url(r), "jobs-103", 36);
  api = await startDandiApi({
    dandisets: { "000101": { draft: assets101 }, "000102": { draft: cancel102 }, "000103": { "0.240101.1200": restart103 } },
    maxPageSize: 7,
  });
});

after(async () => {
  await api?.close();
  await origin?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const downloadUrl = (id: string) => `${api.apiUrl}/assets/${id}/download/`;

describe("a dandiset job into the mirror", () => {
  let s: Running;
  let dir: string;
  let mirror: string;
  let jobId: string;

  before(async () => {
    dir = await tempDir();
    mirror = path.join(dir, "mirror");
    s = await start(testConfig(dir, { mirrorDir: mirror }));
  });
  after(async () => {
    await s.app.close();
  });

  test("completes: every NWB asset built into the mirror layout, failures reported, events in order", async () => {
    const created = await call(s.base, "/jobs", { method: "POST", body: { dandiset: "000101", apiUrl: api.apiUrl } });
    assert.equal(created.status, 202, created.body.toString());
    const c = created.json();
    jobId = c.id;
    assert.equal(created.headers.location, `/jobs/${jobId}`);
    assert.equal(c.mirror, true, "LINDI_MIRROR_DIR set: jobs mirror by default");
    assert.deepEqual(c.source, { kind: "dandiset", dandiset: "000101", version: "draft", apiUrl: api.apiUrl });

    const events = await readEvents(s.base, `/jobs/${jobId}/events`);
    // in order: ids strictly increasing, counts never going back, one end event last
    for (let i = 1; i < events.length; i++) {
      assert.ok(events[i]!.id > events[i - 1]!.id, `event ids increase: ${events[i - 1]!.id} then ${events[i]!.id}`);
      const a = events[i - 1]!.data.status.counts;
      const b = events[i]!.data.status.counts;
      assert.ok(b.done + b.failed + b.skipped >= a.done + a.failed + a.skipped, "finished items never decrease");
    }
    assert.equal(events.at(-1)!.event, "end");
    assert.equal(events.filter((e) => e.event === "end").length, 1);
    assert.equal(events.at(-1)!.data.status.state, "done");
    const itemEvents = events.filter((e) => e.data.item);
    assert.equal(itemEvents.length, 34, "one event per finished item");
    assert.ok(events.some((e) => e.data.status.listing?.pages >= 1 && e.data.status.counts.total === 0), "listing progress before the items");

    const st = (await call(s.base, `/jobs/${jobId}`)).json();
    assert.equal(st.state, "done");
    assert.deepEqual(st.counts, { total: 34, pending: 0, running: 0, done: 32, skipped: 0, failed: 2 });
    assert.deepEqual(st.listing, { pages: 6, assets: 37, count: 37, nwb: 34 });
    assert.ok(st.bytesFetched > 0);
    assert.ok(st.elapsedSeconds > 0);
    assert.equal(st.etaSeconds, 0);
    assert.equal(st.errors.total, 2);
    const byUrl = new Map<string, Json>(st.errors.items.map((e: Json) => [e.url, e]));
    assert.equal(byUrl.get(downloadUrl(MISSING))?.statusCode, 404);
    assert.match(byUrl.get(downloadUrl(MISSING))?.message, /not found/i);
    assert.equal(byUrl.get(downloadUrl(NOT_HDF5))?.statusCode, 422);
    assert.match(byUrl.get(downloadUrl(NOT_HDF5))?.message, /HDF5/);
    // paging of item errors
    const p2 = (await call(s.base, `/jobs/${jobId}?errorsPerPage=1&errorsPage=2`)).json();
    assert.deepEqual(p2.errors.items, [st.errors.items[1]]);
    assert.deepEqual((await call(s.base, `/jobs/${jobId}?errorsPage=9`)).json().errors.items, []);

    // the mirror layout: index + info.json per NWB asset, nothing else
    const assetsDir = path.join(mirror, "dandi/dandisets/000101/assets");
    assert.deepEqual((await readdir(assetsDir)).sort(), good101.map((a) => a.asset_id).sort());
    for (const a of good101) {
      const index = await readFile(path.join(assetsDir, a.asset_id, "nwb.lindi.json"));
      const info = JSON.parse(await readFile(path.join(assetsDir, a.asset_id, "info.json"), "utf8")) as Json;
      assert.deepEqual(info.generator, { ...GENERATOR });
      assert.equal(info.url, downloadUrl(a.asset_id));
      assert.match(info.validator, /^etag:/);
      assert.equal(info.source.size, a.size);
      assert.equal(info.indexBytes, index.byteLength);
      assert.ok(Date.parse(info.builtAt) > 0);
      const doc = JSON.parse(index.toString("utf8")) as Json;
      assert.ok(doc.refs && typeof doc.refs === "object");
      assert.ok(index.toString("utf8").includes(downloadUrl(a.asset_id)) || Object.keys(doc.refs).length > 0);
      assert.equal((await readdir(path.join(assetsDir, a.asset_id))).filter((n) => n.startsWith(".")).length, 0, "no temporaries left");
    }
    // each good asset built once, through the service's builds
    for (const a of good101) assert.equal(s.builds.filter((u) => u === downloadUrl(a.asset_id)).length, 1);
  });

  test("a precomputed asset is a cache hit for GET /lindi, byte for byte the mirror file", async () => {
    const before = s.builds.length;
    for (const a of good101.slice(0, 3)) {
      const r = await call(s.base, `/lindi?url=${encodeURIComponent(downloadUrl(a.asset_id))}`);
      assert.equal(r.status, 200);
      assert.match(r.headers["x-lindi-cache"]!, /^(memory|disk)$/);
      const file = await readFile(path.join(mirror, "dandi/dandisets/000101/assets", a.asset_id, "nwb.lindi.json"));
      assert.ok(r.body.equals(file));
    }
    assert.equal(s.builds.length, before);
  });

  test("GET /mirror serves the tree: ETag, 304, gzip, info.json; nothing outside it", async () => {
    const a = good101[5]!;
    const rel = `dandi/dandisets/000101/assets/${a.asset_id}/nwb.lindi.json`;
    const file = await readFile(path.join(mirror, rel));
    const r = await call(s.base, `/mirror/${rel}`);
    assert.equal(r.status, 200);
    assert.equal(r.headers["content-type"], "application/json");
    assert.ok(r.body.equals(file));
    assert.match(r.headers.etag!, /^"[0-9a-f-]+"$/);
    const again = await call(s.base, `/mirror/${rel}`, { headers: { "if-none-match": r.headers.etag! } });
    assert.equal(again.status, 304);
    const gz = await call(s.base, `/mirror/${rel}`, { headers: { "accept-encoding": "gzip, br" } });
    assert.equal(gz.headers["content-encoding"], "gzip");
    assert.ok(gunzipSync(gz.body).equals(file));
    const head = await call(s.base, `/mirror/${rel}`, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.headers["content-length"], String(file.byteLength));
    const info = await call(s.base, `/mirror/dandi/dandisets/000101/assets/${a.asset_id}/info.json`);
    assert.equal(info.json().url, downloadUrl(a.asset_id));
    // the directory holds the cache and jobs too: nothing outside the mirror, no directories, no dotfiles
    for (const bad of [
      "/mirror/../cache/jobs",
      "/mirror/../../../../etc/passwd",
      "/mirror/%2e%2e/mirror/" + rel,
      "/mirror/dandi/%2e%2e%2f%2e%2e%2fmirror/" + rel,
      "/mirror/dandi/..%2f..%2f..%2fetc%2fpasswd",
      "/mirror/.%2e/cache",
      "/mirror//etc/passwd",
      "/mirror/dandi%00/x",
      "/mirror/dandi%5c..%5c..%5cetc%5cpasswd",
      "/mirror/dandi",
      "/mirror/",
      "/mirror/dandi/dandisets/000101/assets/x/nwb.lindi.json",
      `/mirror/dandi/dandisets/000101/assets/${a.asset_id}/.nwb.lindi.json.0123456789ab.tmp`,
    ]) {
      assert.equal(await rawStatus(s.base, bad), 404, bad);
    }
  });

  test("a second run skips everything (current generator, unchanged sources)", async () => {
    const before = s.builds.length;
    const created = (await call(s.base, "/jobs", { method: "POST", body: { dandiset: "000101", apiUrl: api.apiUrl } })).json();
    const events = await readEvents(s.base, `/jobs/${created.id}/events`);
    const st = events.at(-1)!.data.status;
    assert.equal(st.state, "done");
    assert.deepEqual(st.counts, { total: 34, pending: 0, running: 0, done: 0, skipped: 32, failed: 2 });
    // only the unconvertible item is tried again
    assert.deepEqual(s.builds.slice(before), [downloadUrl(NOT_HDF5)]);
    // a finished job's stream is one end event
    const once = await readEvents(s.base, `/jobs/${created.id}/events`);
    assert.equal(once.length, 1);
    assert.equal(once[0]!.event, "end");
    const list = (await call(s.base, "/jobs")).json();
    assert.deepEqual(list.jobs.map((j: Json) => j.id), [created.id, jobId]);
    assert.deepEqual((await call(s.base, "/jobs?state=running")).json().jobs, []);
    // finished jobs cannot be cancelled
    assert.equal((await call(s.base, `/jobs/${jobId}`, { method: "DELETE" })).status, 409);
  });
});

describe("URL jobs and validation", () => {
  let s: Running;
  let dir: string;

  before(async () => {
    dir = await tempDir();
    s = await start(testConfig(dir));
  });
  after(async () => {
    await s.app.close();
  });

  test("a URL job without mirror warms the cache; its second run skips", async () => {
    const a = origin.url("pynwb/tests/back_compat/1.0.2_str_pub.nwb") + "?job=urls";
    const b = origin.redirectUrl("pynwb/tests/back_compat/1.1.2_nwbfile.nwb", 1) + "?job=urls";
    const created = await call(s.base, "/jobs", { method: "POST", body: { urls: [a, { url: b, path: "x/y/b.lindi.json" }], concurrency: 99 } });
    assert.equal(created.status, 202, created.body.toString());
    assert.equal(created.json().mirror, false, "no LINDI_MIRROR_DIR: no mirror unless asked");
    assert.equal(created.json().concurrency, 2, "capped by the configured limit");
    const end = (await readEvents(s.base, created.json().eventsUrl)).at(-1)!.data.status;
    assert.deepEqual(end.counts, { total: 2, pending: 0, running: 0, done: 2, skipped: 0, failed: 0 });
    for (const u of [a, b]) {
      const head = await call(s.base, `/lindi?url=${encodeURIComponent(u)}`, { method: "HEAD" });
      assert.equal(head.status, 200, "cached");
    }
    assert.equal(existsSync(path.join(dir, "cache", "mirror")), false);
    const again = (await call(s.base, "/jobs", { method: "POST", body: { urls: [a, b] } })).json();
    const end2 = (await readEvents(s.base, again.eventsUrl)).at(-1)!.data.status;
    assert.deepEqual(end2.counts, { total: 2, pending: 0, running: 0, done: 0, skipped: 2, failed: 0 });
    assert.equal(s.builds.length, 2);
    // mirror: true without LINDI_MIRROR_DIR writes under the cache directory, from the cache (no build)
    const m = (await call(s.base, "/jobs", { method: "POST", body: { urls: [{ url: b, path: "x/y/b.lindi.json" }], mirror: true } })).json();
    const end3 = (await readEvents(s.base, m.eventsUrl)).at(-1)!.data.status;
    assert.deepEqual(end3.counts, { total: 1, pending: 0, running: 0, done: 1, skipped: 0, failed: 0 });
    assert.ok(existsSync(path.join(dir, "cache", "mirror", "x/y/b.lindi.json")));
    assert.ok(existsSync(path.join(dir, "cache", "mirror", "x/y/info.json")));
    assert.equal(s.builds.length, 2);
    const served = await call(s.base, "/mirror/x/y/b.lindi.json");
    assert.equal(served.status, 200);
  });

  test("bad requests: 400/403 with reasons; unknown jobs 404", async () => {
    const cases: Array<[unknown, number, RegExp]> = [
      [{}, 400, /either urls .* or dandiset/],
      [{ urls: ["http://127.0.0.1/a.nwb"], dandiset: "000101" }, 400, /not both/],
      [{ urls: [] }, 400, /urls/],
      [{ urls: ["not a url"] }, 400, /urls\[0\]: not a valid absolute URL/],
      [{ urls: ["ftp://127.0.0.1/x.nwb"] }, 400, /urls\[0\]: only http and https/],
      [{ urls: ["https://example.org/x.nwb"] }, 403, /urls\[0\]: source host example.org is not allowed/],
      [{ urls: [{ url: "http://127.0.0.1/a.nwb", path: "../../etc/x.lindi.json" }] }, 400, /urls\[0\]\.path has a segment starting with "\."/],
      [{ urls: [{ url: "http://127.0.0.1/a.nwb", path: "/abs/x.lindi.json" }] }, 400, /must be relative/],
      [{ urls: [{ url: "http://127.0.0.1/a.nwb", path: "a/info.json" }] }, 400, /must end with .* \.lindi\.json/],
      [{ urls: ["http://127.0.0.1/a.nwb", "http://127.0.0.1/a.nwb#x"] }, 400, /urls\[1\] repeats urls\[0\]/],
      [{ urls: [{ url: "http://127.0.0.1/a.nwb", path: "d/a.lindi.json" }, { url: "http://127.0.0.1/b.nwb", path: "d/b.lindi.json" }] }, 400, /same directory/],
      [{ dandiset: "409" }, 400, /6-digit/],
      [{ dandiset: "000409", version: "../../x" }, 400, /version/],
      [{ dandiset: "000409", apiUrl: "https://example.org/api" }, 403, /apiUrl: .*example\.org is not allowed/],
      [{ dandiset: "000409", apiUrl: "file:///etc" }, 400, /apiUrl/],
      [{ urls: ["http://127.0.0.1/a.nwb"], version: "draft" }, 400, /go with dandiset/],
      [{ urls: ["http://127.0.0.1/a.nwb"], bogus: 1 }, 400, /bogus/],
      [{ urls: ["http://127.0.0.1/a.nwb"], concurrency: 0 }, 400, /concurrency/],
    ];
    for (const [body, status, re] of cases) {
      const r = await call(s.base, "/jobs", { method: "POST", body });
      assert.equal(r.status, status, `${JSON.stringify(body)} → ${r.body.toString()}`);
      assert.match(r.json().message, re, JSON.stringify(body));
    }
    const unknown = "00000000-0000-4000-8000-000000000000";
    assert.equal((await call(s.base, `/jobs/${unknown}`)).status, 404);
    assert.equal((await call(s.base, `/jobs/${unknown}/events`)).status, 404);
    assert.equal((await call(s.base, `/jobs/${unknown}`, { method: "DELETE" })).status, 404);
    assert.equal((await call(s.base, "/jobs/not-an-id")).status, 400);
  });

  test("a listing that fails makes the job fail with the reason", async () => {
    const created = (await call(s.base, "/jobs", { method: "POST", body: { dandiset: "000999", apiUrl: api.apiUrl } })).json();
    const end = (await readEvents(s.base, created.eventsUrl)).at(-1)!.data.status;
    assert.equal(end.state, "failed");
    assert.equal(end.error.statusCode, 404);
    assert.match(end.error.message, /dandiset 000999 version draft not found/);
  });
});

describe("cancel and restart", () => {
  after(() => origin.updateFaults({ latencyMs: 0 }));

  test("DELETE cancels: running builds stop, nothing new starts, finished items stay", async () => {
    const dir = await tempDir();
    const mirror = path.join(dir, "mirror");
    const s = await start(testConfig(dir, { mirrorDir: mirror }));
    try {
      origin.updateFaults({ latencyMs: 40 });
      const created = (await call(s.base, "/jobs", { method: "POST", body: { dandiset: "000102", apiUrl: api.apiUrl } })).json();
      let cancelled: Json | undefined;
      const events = await readEvents(s.base, created.eventsUrl, async (ev) => {
        if (!cancelled && ev.data.status.counts.done >= 3) {
          const r = await call(s.base, `/jobs/${created.id}`, { method: "DELETE" });
          assert.equal(r.status, 200);
          cancelled = r.json();
        }
      });
      assert.ok(cancelled);
      assert.equal(cancelled.state, "cancelled");
      assert.equal(events.at(-1)!.event, "end");
      assert.equal(events.at(-1)!.data.status.state, "cancelled");
      const buildsAtCancel = s.builds.length;
      await sleep(1500);
      assert.equal(s.builds.length, buildsAtCancel, "no build starts after the cancel answered");
      const st = (await call(s.base, `/jobs/${created.id}`)).json();
      assert.equal(st.state, "cancelled");
      assert.equal(st.counts.running, 0);
      assert.ok(st.counts.done >= 3 && st.counts.done < 36, `done ${st.counts.done}`);
      assert.equal(st.counts.pending, 36 - st.counts.done - st.counts.failed);
      assert.equal(st.counts.failed, 0, "cancelled builds are not failures");
      assert.ok(buildsAtCancel < 36);
      // finished items stay in the mirror
      const dirNames = await readdir(path.join(mirror, "dandi/dandisets/000102/assets"));
      const complete = dirNames.filter((d) => existsSync(path.join(mirror, "dandi/dandisets/000102/assets", d, "info.json")));
      assert.ok(complete.length >= st.counts.done);
      // the same again is fine; the job stays cancelled
      assert.equal((await call(s.base, `/jobs/${created.id}`, { method: "DELETE" })).json().state, "cancelled");
    } finally {
      origin.updateFaults({ latencyMs: 0 });
      await s.app.close();
    }
  });

  test("a restart mid-job resumes it without touching finished items", async () => {
    const dir = await tempDir();
    const config = testConfig(dir, { mirrorDir: path.join(dir, "mirror"), jobsDir: path.join(dir, "jobs") });
    const s1 = await start(config);
    let id: string;
    let doneBefore: Set<string>;
    try {
      origin.updateFaults({ latencyMs: 40 });
      const created = (await call(s1.base, "/jobs", { method: "POST", body: { dandiset: "000103", version: "0.240101.1200", apiUrl: api.apiUrl } })).json();
      id = created.id;
      await waitFor("6 items done", async () => ((await call(s1.base, `/jobs/${id}`)).json().counts.done >= 6 ? true : undefined));
    } finally {
      await s1.app.close();
    }
    // what the stored record says was finished
    const stored = JSON.parse(await readFile(path.join(dir, "jobs", `${id}.json`), "utf8")) as Json;
    assert.equal(stored.state, "running", "an unfinished job is stored as running");
    assert.ok(stored.items.every((it: Json) => it.state === "done" || it.state === "pending"));
    doneBefore = new Set(stored.items.filter((it: Json) => it.state === "done").map((it: Json) => it.url));
    assert.ok(doneBefore.size >= 6 && doneBefore.size < 36, `done before the restart: ${doneBefore.size}`);

    api.resetStats();
    const s2 = await start(config);
    try {
      const end = (await readEvents(s2.base, `/jobs/${id}/events`)).at(-1)!.data.status;
      assert.equal(end.state, "done");
      assert.deepEqual(end.counts, { total: 36, pending: 0, running: 0, done: 36, skipped: 0, failed: 0 });
      assert.equal(end.resumed, 1);
      assert.equal(api.listingRequests, 0, "the listing is not fetched again");
      for (const u of doneBefore) {
        assert.ok(!s2.builds.includes(u), `finished item rebuilt: ${u}`);
        const assetId = /assets\/([^/]+)\/download/.exec(u)![1]!;
        assert.equal(api.downloads.get(assetId) ?? 0, 0, `finished item requested again: ${u}`);
      }
      assert.ok(s2.builds.length <= 36 - doneBefore.size, `${s2.builds.length} builds after the restart`);
      for (const a of restart103) assert.ok(existsSync(path.join(dir, "mirror/dandi/dandisets/000103/assets", a.asset_id, "info.json")));
    } finally {
      origin.updateFaults({ latencyMs: 0 });
      await s2.app.close();
    }
  });
});
