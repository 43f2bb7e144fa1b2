/**
 * Pieces of the precompute jobs that need no index builds: mirror paths,
 * info.json matching, the DANDI listing against the loopback stand-in
 * (pagination, retries, refusals), job records on disk, build cancellation,
 * rate/ETA and the CLI's progress output and URL lists.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { BuildOptions, BuildResult, IndexBuilder, SourceInfo } from "../src/index/types.ts";
import { BuildCancellation } from "../src/jobs/cancel.ts";
import { assetDownloadUrl, listDandisetNwbAssets, ListingError, normalizeApiUrl } from "../src/jobs/dandi.ts";
import { RateMeter } from "../src/jobs/eta.ts";
import { GENERATOR, isCurrentGenerator } from "../src/jobs/generator.ts";
import { infoMatches, mirrorUpToDate, readMirrorInfo, writeMirror, type MirrorInfo } from "../src/jobs/mirror.ts";
import { dandiMirrorPath, infoPathOf, mirrorPathProblem, resolveInside, urlMirrorPath } from "../src/jobs/paths.ts";
import { JobStore } from "../src/jobs/store.ts";
import type { JobRecord } from "../src/jobs/types.ts";
import { parseUrlList } from "../src/cli/precompute.ts";
import { formatBytes, formatDuration, Progress } from "../src/cli/progress.ts";
import { UsageError } from "../src/cli/args.ts";
import { startDandiApi, type DandiApi, type StandInAsset } from "./support/dandiApi.ts";

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "lindi-jobs-units-"));
  dirs.push(d);
  return d;
}
after(async () => {
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

test("generator: name and version from package.json, plus the index format", async () => {
  const pkg = JSON.parse(await readFile(new URL("../package.json", import.meta.url), "utf8")) as { name: string; version: string };
  assert.equal(GENERATOR.name, pkg.name);
  assert.equal(GENERATOR.version, pkg.version);
  assert.equal(typeof GENERATOR.indexFormat, "number");
  assert.ok(isCurrentGenerator({ ...GENERATOR }));
  assert.ok(!isCurrentGenerator({ ...GENERATOR, version: "0.0.0-old" }));
  assert.ok(!isCurrentGenerator(undefined));
});

test("mirror paths: plain relative paths ending in .lindi.json only", () => {
  for (const ok of ["a.lindi.json", "dandi/dandisets/000409/assets/1b2c-3d/nwb.lindi.json", "x/y_z-1+2=3@4,5/f.v1.lindi.json"]) {
    assert.equal(mirrorPathProblem(ok), undefined, ok);
  }
  for (const bad of ["", "/a.lindi.json", "../a.lindi.json", "a/../b.lindi.json", "a/./b.lindi.json", "a//b.lindi.json", "a/.hidden.lindi.json", "a\\b.lindi.json", "a/b c.lindi.json", "a/info.json", "a/.lindi.json", "a/b.json", "a/b%2f.lindi.json", "a\u0000.lindi.json", "x/".repeat(40) + "a.lindi.json"]) {
    assert.notEqual(mirrorPathProblem(bad), undefined, JSON.stringify(bad));
  }
  assert.equal(dandiMirrorPath("000409", "abc"), "dandi/dandisets/000409/assets/abc/nwb.lindi.json");
  assert.match(urlMirrorPath("https://example.org/a.nwb"), /^urls\/[0-9a-f]{32}\/index\.lindi\.json$/);
  assert.equal(mirrorPathProblem(urlMirrorPath("https://example.org/a.nwb")), undefined);
  assert.equal(infoPathOf("a/b/c.lindi.json"), "a/b/info.json");
  assert.equal(infoPathOf("c.lindi.json"), "info.json");
  assert.throws(() => resolveInside("/tmp/m", "../x"), /leaves the mirror/);
  assert.equal(resolveInside("/tmp/m", "a/b"), path.join("/tmp/m", "a", "b"));
});

test("mirror outputs: atomic index + info.json; up to date only for the same source version, options and generator", async () => {
  const root = await tempDir();
  const rel = "dandi/dandisets/000001/assets/x/nwb.lindi.json";
  const opts: BuildOptions = { chunksThreshold: 1000, splitBytes: 20_000_000 };
  const want = { url: "https://a/b", validator: 'etag:"1"', options: opts };
  assert.equal(await mirrorUpToDate(root, rel, want), false, "nothing written yet");
  const json = Buffer.from('{"refs": {}, "version": 1}');
  await writeMirror(root, rel, json, {
    url: want.url,
    validator: want.validator,
    source: { size: 10, etag: '"1"', lastModified: null },
    options: opts,
    builtAt: new Date().toISOString(),
    buildMillis: 5,
    indexBytes: json.byteLength,
    indexHash: "0".repeat(32),
    bytesFetched: 100,
    requests: 2,
  });
  const info = (await readMirrorInfo(root, rel)) as MirrorInfo;
  assert.deepEqual(info.generator, { ...GENERATOR });
  assert.deepEqual(await readdir(path.dirname(path.join(root, rel))), ["info.json", "nwb.lindi.json"]);
  assert.equal(await mirrorUpToDate(root, rel, want), true);
  assert.equal(await mirrorUpToDate(root, rel, { ...want, validator: 'etag:"2"' }), false, "changed source");
  assert.equal(await mirrorUpToDate(root, rel, { ...want, url: "https://a/c" }), false, "other URL");
  assert.equal(await mirrorUpToDate(root, rel, { ...want, options: { ...opts, splitBytes: null } }), false, "other options");
  assert.equal(infoMatches({ ...info, generator: { ...info.generator, version: "9.9.9" } }, want), false, "other generator");
  // an index that does not match its info.json (interrupted replacement) is not up to date
  await writeFile(path.join(root, rel), "{}");
  assert.equal(await mirrorUpToDate(root, rel, want), false);
  await writeFile(path.join(root, infoPathOf(rel)), "{not json");
  assert.equal(await readMirrorInfo(root, rel), undefined);
});

test("job store: atomic, coalesced saves; unreadable records are reported", async () => {
  const dir = await tempDir();
  const store = new JobStore(dir);
  await store.open();
  const rec: JobRecord = {
    format: 1,
    id: "11111111-2222-4333-8444-555555555555",
    state: "running",
    source: { kind: "urls" },
    mirror: false,
    concurrency: 1,
    createdAt: new Date().toISOString(),
    items: [
      { url: "https://a/1", path: "urls/1/index.lindi.json", state: "done" },
      { url: "https://a/2", path: "urls/2/index.lindi.json", state: "running" },
    ],
    bytesFetched: 0,
    activeMillis: 0,
    seq: 3,
    resumed: 0,
  };
  const saves = [store.save(rec), store.save(rec), store.save(rec)];
  rec.seq = 9; // the queued write serializes the record as it is when it starts
  await Promise.all(saves);
  await store.flush();
  await writeFile(path.join(dir, "22222222-2222-4333-8444-555555555555.json"), "{broken");
  await writeFile(path.join(dir, ".x.json.0123456789ab.tmp"), "partial");
  const bad: string[] = [];
  const loaded = await store.loadAll((f) => bad.push(path.basename(f)));
  assert.equal(loaded.length, 1);
  assert.equal(loaded[0]!.seq, 9);
  assert.deepEqual(loaded[0]!.items!.map((i) => i.state), ["done", "pending"], "in-flight items are stored as pending");
  assert.deepEqual(bad, ["22222222-2222-4333-8444-555555555555.json"]);
  await new JobStore(dir).open(); // removes temporaries of interrupted writes
  assert.ok(!(await readdir(dir)).some((n) => n.endsWith(".tmp")));
});

test("build cancellation: only registered sources get the job's signal", async () => {
  const seen: Array<AbortSignal | undefined> = [];
  const inner: IndexBuilder = {
    probe: async (url) => ({ url, resolvedUrl: url, size: 1, etag: null, lastModified: null }),
    build: (_s: SourceInfo, _o: BuildOptions, signal?: AbortSignal) => {
      seen.push(signal);
      return new Promise<BuildResult>((resolve, reject) => {
        const t = setTimeout(() => resolve({ json: new Uint8Array(), bytesFetched: 0, requests: 0, millis: 0 }), 200);
        signal?.addEventListener("abort", () => {
          clearTimeout(t);
          reject(signal.reason);
        });
      });
    },
    close: async () => undefined,
  };
  const c = new BuildCancellation();
  const b = c.wrap(inner);
  const opts: BuildOptions = { chunksThreshold: 1000, splitBytes: null };
  const mine = await b.probe("https://a/mine");
  const other = await b.probe("https://a/other");
  const job = new AbortController();
  const unregister = c.register(mine, job.signal);
  const manager = new AbortController();
  const pMine = b.build(mine, opts, manager.signal);
  const pOther = b.build(other, opts, manager.signal);
  job.abort(new Error("job cancelled"));
  await assert.rejects(pMine, /job cancelled/);
  await pOther; // not registered: runs to the end
  await assert.rejects(b.build(mine, opts), /job cancelled/, "a queued build of a cancelled job does not start");
  unregister();
  await b.build(mine, opts);
});

test("rate meter: pace and ETA", () => {
  const m = new RateMeter(0);
  assert.equal(m.pace(10, 1000).etaSeconds, null);
  m.record(1000);
  m.record(3000);
  const p = m.pace(8, 2000);
  assert.equal(p.itemsPerSecond, 1);
  assert.equal(p.bytesPerSecond, 2000);
  assert.equal(p.etaSeconds, 8);
  assert.equal(m.pace(0, 2000).etaSeconds, 0);
});

test("progress: plain lines off a TTY, a redrawn bar on one", () => {
  let t = 0;
  const lines: string[] = [];
  const plain = new Progress({ write: (s) => lines.push(s) }, "lines", 3, () => t);
  t = 1000;
  plain.itemFinished("built", "a/x.lindi.json", { indexBytes: 2500, bytesFetched: 10_000, millis: 120 });
  t = 2000;
  plain.itemFinished("skipped", "b/x.lindi.json");
  plain.itemFinished("failed", "c/x.lindi.json", { reason: "source not found (404)" });
  plain.end();
  assert.deepEqual(lines, [
    "[1/3] built   a/x.lindi.json  index 2.50 kB, fetched 10.0 kB, 0.12 s | 10.0 kB fetched, 10.0 kB/s, 1.0 items/s, ETA 0:02\n",
    "[2/3] skipped b/x.lindi.json  up to date | 10.0 kB fetched, 5.00 kB/s, 1.0 items/s, ETA 0:01\n",
    "[3/3] FAILED  c/x.lindi.json: source not found (404) | 10.0 kB fetched, 5.00 kB/s, 1.5 items/s, ETA 0:00\n",
  ]);
  assert.equal(Progress.modeFor({ write: () => true, isTTY: true }), "bar");
  assert.equal(Progress.modeFor({ write: () => true }), "lines");

  let screen = "";
  t = 0;
  const bar = new Progress({ write: (s) => (screen += s), isTTY: true, columns: 120 }, "bar", 4, () => t);
  t = 1000;
  bar.itemFinished("built", "a", { bytesFetched: 2_000_000 });
  assert.match(screen, /\r\x1b\[K\[#+-+\] 1\/4 items {2}2\.00 MB {2}2\.00 MB\/s {2}1\.0 items\/s {2}ETA 0:03/);
  bar.itemFinished("failed", "b", { reason: "boom" });
  assert.match(screen, /\r\x1b\[K\[2\/4\] FAILED {2}b: boom\n/, "failures are printed above the bar");
  assert.match(screen, /2\/4 items {2}1 failed/);
  bar.end();
  assert.ok(screen.endsWith("\n"));
  assert.equal(formatBytes(999), "999 B");
  assert.equal(formatBytes(123_456_789), "123 MB");
  assert.equal(formatDuration(3725), "1:02:05");
  assert.equal(formatDuration(null), "?");
});

test("precompute URL lists: URL [PATH] lines, comments, checks", () => {
  const items = parseUrlList("# sources\nhttps://example.org/a.nwb\n\n  https://example.org/b.nwb   x/b.lindi.json  \n");
  assert.deepEqual(items, [
    { url: "https://example.org/a.nwb", path: urlMirrorPath("https://example.org/a.nwb") },
    { url: "https://example.org/b.nwb", path: "x/b.lindi.json" },
  ]);
  assert.throws(() => parseUrlList("ftp://x/a.nwb"), (e: unknown) => e instanceof UsageError && /urls:1: not an http\(s\) URL/.test(e.message));
  assert.throws(() => parseUrlList("https://x/a.nwb ../a.lindi.json"), /urls:1: path has a segment starting with "\."/);
  assert.throws(() => parseUrlList("https://x/a.nwb\nhttps://x/a.nwb"), /urls:2: repeats line 1/);
  assert.throws(() => parseUrlList("https://x/a.nwb d/a.lindi.json\nhttps://x/b.nwb d/b.lindi.json"), /same directory/);
  assert.throws(() => parseUrlList("https://x/a.nwb a.lindi.json extra"), /expected "URL \[PATH\]"/);
});

let api: DandiApi;
const assets = (n: number, prefix: string): StandInAsset[] =>
  Array.from({ length: n }, (_, i) => ({ asset_id: `${prefix}-${i}`, path: `sub-${i}/f${i}.${i % 4 === 3 ? "mp4" : "nwb"}`, size: i, target: `http://127.0.0.1:9/${i}` }));
before(async () => {
  api = await startDandiApi({ dandisets: { "000001": { draft: assets(23, "a"), "0.1.0": [] } }, maxPageSize: 5 });
});
after(async () => {
  await api.close();
});

test("DANDI listing: follows next links, keeps NWB assets, reports progress", async () => {
  const pages: number[] = [];
  const list = await listDandisetNwbAssets({ apiUrl: normalizeApiUrl(api.apiUrl + "/"), dandiset: "000001", version: "draft", onPage: (p) => pages.push(p.pages) });
  assert.deepEqual(pages, [1, 2, 3, 4, 5]);
  assert.equal(api.listingRequests, 5);
  assert.deepEqual(list.map((a) => a.asset_id), assets(23, "a").filter((a) => a.path.endsWith(".nwb")).map((a) => a.asset_id));
  assert.equal(assetDownloadUrl(api.apiUrl, "a-1"), `${api.apiUrl}/assets/a-1/download/`);
  assert.deepEqual(await listDandisetNwbAssets({ apiUrl: api.apiUrl, dandiset: "000001", version: "0.1.0" }), []);
});

test("DANDI listing: 5xx retried, 404 reported, URLs checked, bad answers refused", async () => {
  const flaky = await startDandiApi({ dandisets: { "000002": { draft: assets(3, "b") } }, listingErrors: 2 });
  try {
    const list = await listDandisetNwbAssets({ apiUrl: flaky.apiUrl, dandiset: "000002", version: "draft" });
    assert.equal(list.length, 3);
    assert.equal(flaky.listingRequests, 3);
  } finally {
    await flaky.close();
  }
  await assert.rejects(
    listDandisetNwbAssets({ apiUrl: api.apiUrl, dandiset: "000404", version: "draft" }),
    (e: unknown) => e instanceof ListingError && e.statusHint === 404 && /dandiset 000404 version draft not found/.test(e.message),
  );
  await assert.rejects(
    listDandisetNwbAssets({ apiUrl: api.apiUrl, dandiset: "000001", version: "draft", checkUrl: async () => { throw new Error("refused by policy"); } }),
    /refused by policy/,
  );
  await assert.rejects(listDandisetNwbAssets({ apiUrl: api.apiUrl, dandiset: "1", version: "draft" }), /6 digits/);
  await assert.rejects(listDandisetNwbAssets({ apiUrl: api.apiUrl, dandiset: "000001", version: ".." }), /not a DANDI version/);
  const weird = await startDandiApi({ dandisets: { "000003": { draft: [{ asset_id: "../../x", path: "a.nwb", size: 1, target: null }] } } });
  try {
    await assert.rejects(listDandisetNwbAssets({ apiUrl: weird.apiUrl, dandiset: "000003", version: "draft" }), /asset id/);
  } finally {
    await weird.close();
  }
  assert.throws(() => normalizeApiUrl("ftp://x/api"), /http/);
  assert.equal(normalizeApiUrl("https://api.dandiarchive.org/api/?x=1#y"), "https://api.dandiarchive.org/api");
});
