/**
 * Safe defaults and bad input, end to end (real server, real builder, the
 * loopback origin): private/loopback targets refused (also behind a
 * redirect), allow-list, malformed requests, and sources that are corrupt,
 * not HDF5, missing, failing, too slow or too large — each answers its
 * documented status, nothing is cached, and the process keeps serving.
 */
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import type { FastifyInstance } from "fastify";
import { defaultConfig, type ServiceConfig } from "../src/config.ts";
import { buildServer } from "../src/server.ts";
import { createUrlPolicy } from "../src/service/urlPolicy.ts";
import { loadFeatures, requireCorpus } from "./support/corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { listenLoopback } from "./support/service.ts";

const GOOD = "corpus/pynwb/tests/back_compat/1.0.2_nwbfile.nwb";
const EXTERNAL_LINK = "corpus/matnwb/_history/e7401f8e7d/link_test.nwb";

interface Running {
  app: FastifyInstance;
  base: string;
  dir: string;
}

const cleanup: Array<() => Promise<unknown>> = [];
let root: string;
let origin: RangeOrigin;

function config(dir: string, over: Partial<ServiceConfig>): ServiceConfig {
  return {
    ...defaultConfig(),
    port: 0,
    host: "127.0.0.1",
    logLevel: "silent",
    cacheDir: dir,
    poolSize: 2,
    probeTtlSeconds: 0,
    probeTimeoutSeconds: 2,
    buildTimeoutSeconds: 30,
    maxEventLoopDelayMs: 0,
    ...over,
  };
}

async function start(over: Partial<ServiceConfig>): Promise<Running> {
  const dir = await mkdtemp(path.join(tmpdir(), "lindi-safety-"));
  const app = await buildServer(config(dir, over));
  const base = await listenLoopback(app);
  cleanup.push(async () => {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  });
  return { app, base, dir };
}

async function get(base: string, p: string, method: "GET" | "HEAD" = "GET") {
  const res = await request(base + p, { method });
  const text = await res.body.text();
  return { status: res.statusCode, headers: res.headers, text, json: () => JSON.parse(text) as Record<string, unknown> };
}

const lindi = (url: string, extra = "") => `/lindi?url=${encodeURIComponent(url)}${extra}`;

/** Asserts the status and the error body shape `{statusCode, error, message}`. */
async function expectError(base: string, p: string, status: number, what: string): Promise<string> {
  const r = await get(base, p);
  assert.equal(r.status, status, `${what}: ${r.text}`);
  const body = r.json();
  assert.deepEqual(Object.keys(body).sort(), ["error", "message", "statusCode"], what);
  assert.equal(body.statusCode, status, what);
  assert.match(String(r.headers["content-type"]), /^application\/json/);
  return String(body.message);
}

/** Index files on disk, once background cache writes have settled. */
async function diskEntries(dir: string): Promise<number> {
  const count = async () =>
    (await readdir(path.join(dir, "entries"), { recursive: true }).catch(() => [] as string[])).filter((f) =>
      f.endsWith(".lindi"),
    ).length;
  let n = await count();
  for (let i = 0; i < 20; i++) {
    await sleep(50);
    const m = await count();
    if (m === n && i >= 3) break;
    n = m;
  }
  return n;
}

before(async () => {
  // the origin serves the corpus plus a few files that are not HDF5
  root = await mkdtemp(path.join(tmpdir(), "lindi-safety-origin-"));
  await symlink(requireCorpus(), path.join(root, "corpus"));
  await mkdir(path.join(root, "junk"));
  await writeFile(path.join(root, "junk/random.bin"), randomBytes(256 * 1024));
  await writeFile(
    path.join(root, "junk/page.html"),
    "<!doctype html><html><head><title>Login</title></head><body>" + "<p>Please sign in.</p>".repeat(500) + "</body></html>",
  );
  origin = await startRangeOrigin({ root });
});

after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
  await origin.close();
  await rm(root, { recursive: true, force: true });
});

describe("defaults refuse private targets", () => {
  test("loopback, private, link-local and metadata addresses: 403 without contacting them", async () => {
    const strict = await start({ allowedHosts: ["127.0.0.1", "localhost"] }); // allowPrivateNetworks: false (default)
    origin.resetStats();
    await expectError(strict.base, lindi(origin.url(GOOD)), 403, "loopback IP");
    await expectError(strict.base, lindi(origin.url(GOOD).replace("127.0.0.1", "localhost")), 403, "a name resolving to loopback");
    assert.equal(origin.stats.requests, 0, "the origin was never contacted");

    const anyHost = await start({ allowedHosts: "*" });
    for (const u of [
      "http://169.254.169.254/latest/meta-data/",
      "http://10.0.0.1/x.nwb",
      "http://192.168.1.10:8080/x.nwb",
      "http://172.16.0.1/x.nwb",
      "http://100.100.100.200/latest/meta-data/",
      "http://0.0.0.0:8080/x.nwb",
      "http://[::1]:8080/x.nwb",
      "http://[::ffff:127.0.0.1]/x.nwb",
      "http://[fd00:ec2::254]/latest/meta-data/",
      "http://2130706433/x.nwb",
    ]) {
      const msg = await expectError(anyHost.base, lindi(u), 403, u);
      assert.match(msg, /non-public address/, u);
    }
    // HEAD is refused the same way
    assert.equal((await get(anyHost.base, lindi("http://10.0.0.1/x.nwb"), "HEAD")).status, 403);
  });

  test("a redirect into a private address is refused", async () => {
    const second = await startRangeOrigin({ root });
    cleanup.push(() => second.close());
    // 127.0.0.1 may be private (the test's origin); "localhost" may not
    second.setFaults({ redirectBase: `http://localhost:${second.port}` });
    const s = await start({ allowedHosts: ["127.0.0.1", "localhost"], allowPrivateNetworks: ["127.0.0.1"] });
    assert.equal((await get(s.base, lindi(second.url(GOOD)))).status, 200, "the allowed private host works");
    second.resetStats();
    const msg = await expectError(s.base, lindi(second.redirectUrl(GOOD)), 403, "redirect to localhost");
    assert.match(msg, /non-public address|not allowed/);
    const fileRequests = second.log.filter((e) => !e.path.startsWith("redirect/"));
    assert.deepEqual(fileRequests, [], "the redirect target was never requested");
    assert.ok(second.stats.redirects >= 1);
  });

  test("DNS rebinding: a name that is public when checked and private when connecting is refused", async () => {
    // the service's policy with scripted DNS: public when the URL is checked, loopback when connecting
    const policy = createUrlPolicy({
      allowedHosts: ["rebind.test"],
      allowPrivateNetworks: false,
      lookup: async () => [{ address: "93.184.216.34", family: 4 }],
      connectResolver: async () => [{ address: "127.0.0.1", family: 4 }],
    });
    const dir = await mkdtemp(path.join(tmpdir(), "lindi-safety-"));
    const app = await buildServer(config(dir, { allowedHosts: ["rebind.test"] }), { policy });
    cleanup.push(async () => {
      await app.close();
      await rm(dir, { recursive: true, force: true });
    });
    const base = await listenLoopback(app);
    origin.resetStats();
    const url = origin.url(GOOD).replace("127.0.0.1", "rebind.test");
    const msg = await expectError(base, lindi(url), 403, "rebinding");
    assert.match(msg, /when connecting/);
    assert.equal(origin.stats.requests, 0, "no connection reached the origin");

    // the same connector does connect when the name is exempt (so it is the one in use)
    const exempt = createUrlPolicy({
      allowedHosts: ["rebind.test"],
      allowPrivateNetworks: ["rebind.test"],
      lookup: async () => [{ address: "127.0.0.1", family: 4 }],
    });
    const dir2 = await mkdtemp(path.join(tmpdir(), "lindi-safety-"));
    const app2 = await buildServer(config(dir2, { allowedHosts: ["rebind.test"] }), { policy: exempt });
    cleanup.push(async () => {
      await app2.close();
      await rm(dir2, { recursive: true, force: true });
    });
    await app2.listen({ port: 0, host: "127.0.0.1" });
    const base2 = `http://127.0.0.1:${(app2.server.address() as { port: number }).port}`;
    const ok = await get(base2, lindi(url));
    assert.equal(ok.status, 200, ok.text);
  });

  test("hosts outside LINDI_ALLOWED_HOSTS: 403; the default list is DANDI's", async () => {
    const s = await start({ allowPrivateNetworks: true }); // default allow-list
    await expectError(s.base, lindi(origin.url(GOOD)), 403, "127.0.0.1 not listed");
    await expectError(s.base, lindi("https://example.org/file.nwb"), 403, "example.org");
    await expectError(s.base, lindi("https://api.dandiarchive.org.evil.example/x"), 403, "suffix trick");
  });
});

describe("malformed requests: 400", () => {
  test("schemes, URLs and options", async () => {
    const s = await start({ allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true });
    const good = origin.url(GOOD);
    for (const [p, what] of [
      [lindi("file:///etc/passwd"), "file://"],
      [lindi("ftp://127.0.0.1/x.nwb"), "ftp://"],
      [lindi("gopher://127.0.0.1:70/_x"), "gopher://"],
      [lindi("not a url"), "not a URL"],
      [lindi("/relative/path.nwb"), "relative"],
      [lindi("http://user:secret@127.0.0.1/x.nwb"), "credentials"],
      ["/lindi", "missing url"],
      ["/lindi?url=", "empty url"],
      [lindi(good, "&chunksThreshold=-1"), "negative threshold"],
      [lindi(good, "&splitBytes=1.5"), "fractional splitBytes"],
      [lindi(good, "&splitBytes=all"), "splitBytes word"],
      [lindi(good, "&wait=soon"), "wait word"],
      [lindi(good, "&wait=99999"), "wait too long"],
      [lindi(good, "&chunkThreshold=5"), "misspelled option"],
    ] as const) {
      await expectError(s.base, p, 400, what);
    }
    // "none" and integers are accepted
    assert.equal((await get(s.base, lindi(good, "&chunksThreshold=none&splitBytes=0"))).status, 200);
    assert.equal(await diskEntries(s.dir), 1);
  });
});

describe("bad sources: documented status, nothing cached, still serving", () => {
  let s: Running;
  before(async () => {
    s = await start({ allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true });
  });

  test("corrupt corpus files (features.json: open_ok false), random bytes, an HTML page, a file LINDI cannot express: 422", async () => {
    const corrupt = loadFeatures().filter((e) => !e.open_ok);
    assert.ok(corrupt.length >= 10, "the corpus lists corrupt files");
    const cases = [...corrupt.map((e) => `corpus/${e.path}`), "junk/random.bin", "junk/page.html", EXTERNAL_LINK];
    const results = await Promise.all(
      cases.map(async (rel) => {
        const r = await get(s.base, lindi(origin.url(rel)));
        return { rel, status: r.status, body: r.text };
      }),
    );
    const byRel = new Map(results.map((r) => [r.rel, r]));
    // files HDF5 itself cannot open (truncated, wrong driver, ...) and non-HDF5 bytes: 422
    const mustFail = [
      ...corrupt.filter((e) => (e.errors as string[] | undefined)?.some((m) => /truncated|driver|decoding/.test(m))).map((e) => `corpus/${e.path}`),
      "junk/random.bin",
      "junk/page.html",
      EXTERNAL_LINK,
    ];
    assert.ok(mustFail.length >= 10);
    for (const rel of mustFail) {
      const r = byRel.get(rel)!;
      assert.equal(r.status, 422, `${rel}: ${r.body.slice(0, 300)}`);
      assert.equal((JSON.parse(r.body) as { statusCode: number }).statusCode, 422);
    }
    assert.match(byRel.get(EXTERNAL_LINK)!.body, /external link/i);
    // the others (e.g. files still flagged "open for write", which this reader opens read-only) either
    // fail with 422 or give a well-formed index: never another status
    let indexed = 0;
    for (const r of results) {
      assert.ok(r.status === 422 || r.status === 200, `${r.rel}: ${r.status} ${r.body.slice(0, 300)}`);
      if (r.status === 200) {
        indexed++;
        assert.ok((JSON.parse(r.body) as { refs: Record<string, unknown> }).refs[".zgroup"], r.rel);
      }
    }
    // failures are not cached: HEAD says so, and the disk holds only the successes
    for (const rel of mustFail.slice(0, 4)) {
      assert.equal((await get(s.base, lindi(origin.url(rel)), "HEAD")).status, 404, rel);
    }
    assert.equal(await diskEntries(s.dir), indexed);
  });

  test("missing source: 404; origin 500s: 502; hanging origin: 504; slow build: 504", async () => {
    await expectError(s.base, lindi(origin.url("corpus/no/such/file.nwb")), 404, "missing");
    origin.setFaults({ error500: 1_000_000 });
    try {
      await expectError(s.base, lindi(origin.url(GOOD)), 502, "origin 500");
    } finally {
      origin.setFaults({});
    }
    origin.setFaults({ hang: {} });
    try {
      const t0 = Date.now();
      await expectError(s.base, lindi(origin.url(GOOD)), 504, "hanging origin");
      assert.ok(Date.now() - t0 < 15_000, "answered within the probe timeout");
    } finally {
      origin.setFaults({});
    }
    assert.equal((await get(s.base, lindi(origin.url(GOOD)), "HEAD")).status, 404, "nothing cached");
  });

  test("a build slower than LINDI_BUILD_TIMEOUT_SECONDS: 504", async () => {
    const slow = await start({ allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true, buildTimeoutSeconds: 1 });
    origin.setFaults({ bandwidthBytesPerSec: 500 });
    try {
      await expectError(slow.base, lindi(origin.url(GOOD)), 504, "slow build");
    } finally {
      origin.setFaults({});
    }
    assert.equal(await diskEntries(slow.dir), 0);
    assert.equal((await get(slow.base, "/healthz")).status, 200);
  });

  test("a source larger than LINDI_MAX_SOURCE_BYTES: 413", async () => {
    const small = await start({ allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true, maxSourceBytes: 1000 });
    const msg = await expectError(small.base, lindi(origin.url(GOOD)), 413, "too large");
    assert.match(msg, /13056 bytes/);
  });

  test("after all that the process is alive and serving", async () => {
    assert.equal((await get(s.base, "/healthz")).status, 200);
    assert.equal((await get(s.base, "/readyz")).status, 200);
    const before = await diskEntries(s.dir);
    const ok = await get(s.base, lindi(origin.url(GOOD)));
    assert.equal(ok.status, 200, ok.text);
    assert.equal(await diskEntries(s.dir), before + 1);
    const metrics = (await get(s.base, "/metrics")).text;
    assert.match(metrics, /lindi_builds_total\{outcome="unconvertible"\} \d+/);
  });
});
