/**
 * Units of the service that need no server: configuration from the
 * environment, the URL policy (address classes, allow-list, DNS), cache keys,
 * content negotiation.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { ConfigError, DEFAULT_ALLOWED_HOSTS, defaultConfig, ENVIRONMENT, loadConfig, parseBytes } from "../src/config.ts";
import { createUrlPolicy, nonPublicReason, UrlRefusedError, type LookupFn } from "../src/service/urlPolicy.ts";
import { buildOptions, cacheKey, normalizeUrl, sourceValidator } from "../src/service/key.ts";
import { chooseEncoding, matchesIfNoneMatch } from "../src/service/negotiate.ts";
import { toHttpError } from "../src/service/errors.ts";
import { LindiConversionError } from "../src/lindi/errors.ts";
import { NotHdf5Error } from "../src/lindi/indexHdf5.ts";
import { OriginTimeoutError, SourceChangedError, SourceNotFoundError } from "../src/hdf5/httpErrors.ts";

test("config: defaults", () => {
  const c = loadConfig({});
  assert.equal(c.port, 8080);
  assert.equal(c.host, "0.0.0.0");
  assert.equal(c.cacheDir, path.resolve(".lindi-cache"));
  assert.deepEqual(c.allowedHosts, DEFAULT_ALLOWED_HOSTS);
  assert.deepEqual(DEFAULT_ALLOWED_HOSTS, ["api.dandiarchive.org", "dandiarchive.s3.amazonaws.com"]);
  assert.equal(c.allowPrivateNetworks, false);
  assert.equal(c.defaultWaitSeconds, 30);
  assert.ok(c.poolSize >= 1);
});

test("config: every variable is read", () => {
  const c = loadConfig({
    PORT: "9000",
    HOST: "127.0.0.1",
    LOG_LEVEL: "DEBUG",
    LINDI_CACHE_DIR: "/tmp/x",
    LINDI_CACHE_MAX_BYTES: "2GiB",
    LINDI_MEMORY_CACHE_BYTES: "64MB",
    LINDI_ALLOWED_HOSTS: "Example.org, *.s3.amazonaws.com",
    LINDI_ALLOW_PRIVATE_NETWORKS: "true",
    LINDI_MAX_SOURCE_BYTES: "1000",
    LINDI_BUILD_QUEUE_MAX: "0",
    LINDI_POOL_SIZE: "3",
    LINDI_BUILD_TIMEOUT_SECONDS: "60",
    LINDI_ORIGIN_CONNECTIONS: "32",
    LINDI_PROBE_TTL_SECONDS: "0",
    LINDI_PROBE_TIMEOUT_SECONDS: "5",
    LINDI_MAX_WAIT_SECONDS: "10",
    LINDI_CORS_ORIGINS: "https://viewer.example.org, http://localhost:3000",
    LINDI_MAX_EVENT_LOOP_DELAY_MS: "0",
    LINDI_MAX_HEAP_USED_BYTES: "1G",
    LINDI_MAX_RSS_BYTES: "2G",
    LINDI_SLICE_MAX_ELEMENTS: "1000",
    LINDI_SLICE_MAX_BYTES: "1MiB",
    LINDI_SLICE_INFLIGHT_BYTES: "100MiB",
    LINDI_SLICE_QUEUE_SECONDS: "7",
    LINDI_CHUNK_CACHE_BYTES: "32MiB",
    LINDI_INFLATE_THREADS: "2",
    LINDI_ANSWER_CACHE_BYTES: "8MiB",
    LINDI_JOBS_DIR: "/tmp/jobs",
    LINDI_MIRROR_DIR: "/tmp/mirror",
    LINDI_JOB_CONCURRENCY: "2",
  });
  assert.equal(c.port, 9000);
  assert.equal(c.host, "127.0.0.1");
  assert.equal(c.logLevel, "debug");
  assert.equal(c.cacheDir, "/tmp/x");
  assert.equal(c.cacheMaxBytes, 2 * 1024 ** 3);
  assert.equal(c.memoryCacheBytes, 64_000_000);
  assert.deepEqual(c.allowedHosts, ["example.org", "*.s3.amazonaws.com"]);
  assert.equal(c.allowPrivateNetworks, true);
  assert.equal(c.maxSourceBytes, 1000);
  assert.equal(c.buildQueueMax, 0);
  assert.equal(c.poolSize, 3);
  assert.equal(c.buildTimeoutSeconds, 60);
  assert.equal(c.originConnections, 32);
  assert.equal(c.probeTtlSeconds, 0);
  assert.equal(c.probeTimeoutSeconds, 5);
  assert.equal(c.maxWaitSeconds, 10);
  assert.equal(c.defaultWaitSeconds, 10, "default wait capped by the maximum");
  assert.deepEqual(c.corsOrigins, ["https://viewer.example.org", "http://localhost:3000"]);
  assert.equal(c.maxEventLoopDelayMs, 0);
  assert.equal(c.maxHeapUsedBytes, 1024 ** 3);
  assert.equal(c.maxRssBytes, 2 * 1024 ** 3);
  assert.equal(c.sliceMaxElements, 1000);
  assert.equal(c.sliceMaxBytes, 1024 ** 2);
  assert.equal(c.sliceInflightBytes, 100 * 1024 ** 2);
  assert.equal(c.sliceQueueSeconds, 7);
  assert.equal(c.chunkCacheBytes, 32 * 1024 ** 2);
  assert.equal(c.inflateThreads, 2);
  assert.equal(c.answerCacheBytes, 8 * 1024 ** 2);
  assert.equal(c.jobsDir, "/tmp/jobs");
  assert.equal(c.mirrorDir, "/tmp/mirror");
  assert.equal(c.jobConcurrency, 2);
  // every documented variable was part of this test
  const names = ENVIRONMENT.map((v) => v.name).sort();
  assert.deepEqual(
    names,
    [
      "HOST",
      "LINDI_ALLOWED_HOSTS",
      "LINDI_ALLOW_PRIVATE_NETWORKS",
      "LINDI_ANSWER_CACHE_BYTES",
      "LINDI_BUILD_QUEUE_MAX",
      "LINDI_BUILD_TIMEOUT_SECONDS",
      "LINDI_CACHE_DIR",
      "LINDI_CACHE_MAX_BYTES",
      "LINDI_CHUNK_CACHE_BYTES",
      "LINDI_CORS_ORIGINS",
      "LINDI_INFLATE_THREADS",
      "LINDI_JOBS_DIR",
      "LINDI_JOB_CONCURRENCY",
      "LINDI_MAX_EVENT_LOOP_DELAY_MS",
      "LINDI_MAX_HEAP_USED_BYTES",
      "LINDI_MAX_RSS_BYTES",
      "LINDI_MAX_SOURCE_BYTES",
      "LINDI_MAX_WAIT_SECONDS",
      "LINDI_MEMORY_CACHE_BYTES",
      "LINDI_MIRROR_DIR",
      "LINDI_ORIGIN_CONNECTIONS",
      "LINDI_POOL_SIZE",
      "LINDI_PROBE_TIMEOUT_SECONDS",
      "LINDI_PROBE_TTL_SECONDS",
      "LINDI_SLICE_INFLIGHT_BYTES",
      "LINDI_SLICE_MAX_BYTES",
      "LINDI_SLICE_MAX_ELEMENTS",
      "LINDI_SLICE_QUEUE_SECONDS",
      "LOG_LEVEL",
      "PORT",
    ],
  );
  assert.equal(loadConfig({ LINDI_INFLATE_THREADS: "0" }).inflateThreads, 0, "0: inflate on the event loop only");
  assert.equal(loadConfig({ LINDI_ANSWER_CACHE_BYTES: "0" }).answerCacheBytes, 0, "0: no answer cache");
  assert.throws(() => loadConfig({ LINDI_ANSWER_CACHE_BYTES: "lots" }), /LINDI_ANSWER_CACHE_BYTES/);
  assert.throws(() => loadConfig({ LINDI_INFLATE_THREADS: "-1" }), /LINDI_INFLATE_THREADS/);
  assert.equal(loadConfig({ LINDI_ALLOWED_HOSTS: "*" }).allowedHosts, "*");
  assert.equal(loadConfig({}).corsOrigins, "*");
  assert.equal(loadConfig({ LINDI_CORS_ORIGINS: "none" }).corsOrigins, null);
  assert.equal(loadConfig({ LINDI_CORS_ORIGINS: "https://a.org,*" }).corsOrigins, "*");
  assert.throws(() => loadConfig({ LINDI_CORS_ORIGINS: "viewer.example.org" }), /LINDI_CORS_ORIGINS: not an origin/);
  assert.throws(() => loadConfig({ LINDI_CORS_ORIGINS: "https://a.org/path" }), /not an origin/);
  assert.deepEqual(loadConfig({ LINDI_ALLOW_PRIVATE_NETWORKS: "127.0.0.1, mirror.internal" }).allowPrivateNetworks, [
    "127.0.0.1",
    "mirror.internal",
  ]);
  assert.equal(loadConfig({ LINDI_ALLOW_PRIVATE_NETWORKS: "0" }).allowPrivateNetworks, false);
});

test("config: README's Service section documents every variable with its default", () => {
  const readme = readFileSync(path.join(import.meta.dirname, "../README.md"), "utf8");
  const section = readme.slice(readme.indexOf("## Service"));
  assert.ok(section.length > 100, "README has a Service section");
  for (const v of ENVIRONMENT) {
    const row = section.split("\n").find((l) => l.startsWith(`| \`${v.name}\` |`));
    assert.ok(row, `${v.name} in README`);
    const def = v.name === "LINDI_CACHE_DIR" ? "./.lindi-cache" : v.default;
    assert.ok(row.includes(`\`${def}\``), `${v.name} default ${def} in README: ${row}`);
  }
});

test("config: invalid values are all reported", () => {
  assert.throws(
    () => loadConfig({ PORT: "http", LINDI_POOL_SIZE: "0", LINDI_CACHE_MAX_BYTES: "lots", LOG_LEVEL: "loud" }),
    (e: unknown) => e instanceof ConfigError && e.problems.length === 4,
  );
  assert.equal(parseBytes("1.5k"), 1536);
  assert.throws(() => parseBytes("-1"));
  assert.equal(defaultConfig().port, 8080);
});

test("urlPolicy: address classes", () => {
  const blocked = [
    "127.0.0.1",
    "127.1.2.3",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",
    "100.100.100.200",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::1",
    "::",
    "fe80::1",
    "fd00:ec2::254",
    "fc00::1",
    "::ffff:127.0.0.1",
    "::ffff:a9fe:a9fe",
    "64:ff9b::7f00:1",
    "2002:c0a8:101::1",
  ];
  for (const a of blocked) assert.notEqual(nonPublicReason(a), undefined, a);
  for (const a of ["8.8.8.8", "52.216.0.1", "2600:1f18::1", "2606:4700:4700::1111", "::ffff:8.8.8.8"]) {
    assert.equal(nonPublicReason(a), undefined, a);
  }
});

test("urlPolicy: scheme, allow-list, DNS answers checked", async () => {
  const dns: Record<string, string[]> = {
    "api.dandiarchive.org": ["3.5.7.9"],
    "dandiarchive.s3.amazonaws.com": ["52.216.0.1", "2600:1f18::1"],
    "evil.dandiarchive.org": ["10.0.0.5"],
    "rebind.example": ["8.8.8.8", "127.0.0.1"],
    "x.s3.amazonaws.com": ["52.1.1.1"],
  };
  const lookup: LookupFn = async (h) => {
    const a = dns[h];
    if (!a) throw Object.assign(new Error("nope"), { code: "ENOTFOUND" });
    return a.map((address) => ({ address, family: address.includes(":") ? 6 : 4 }));
  };
  const policy = createUrlPolicy({ allowedHosts: DEFAULT_ALLOWED_HOSTS, allowPrivateNetworks: false, lookup });
  const status = async (u: string) => {
    try {
      await policy.check(u);
      return 200;
    } catch (e) {
      return (e as { statusHint: number }).statusHint;
    }
  };
  assert.equal(await status("https://api.dandiarchive.org/api/assets/1/download/"), 200);
  assert.equal(await status("https://dandiarchive.s3.amazonaws.com/blobs/x"), 200);
  assert.equal(await status("HTTPS://API.DANDIARCHIVE.ORG./api/"), 200);
  assert.equal(await status("file:///etc/passwd"), 400);
  assert.equal(await status("ftp://api.dandiarchive.org/x"), 400);
  assert.equal(await status("not a url"), 400);
  assert.equal(await status("https://user:pw@api.dandiarchive.org/x"), 400);
  assert.equal(await status("https://example.org/x.nwb"), 403);
  assert.equal(await status("http://127.0.0.1/x"), 403);

  const any = createUrlPolicy({ allowedHosts: "*", allowPrivateNetworks: false, lookup });
  const anyStatus = async (u: string) =>
    any.check(u).then(
      () => 200,
      (e: { statusHint: number }) => e.statusHint,
    );
  assert.equal(await anyStatus("https://rebind.example/x"), 403, "any private answer refuses");
  assert.equal(await anyStatus("http://169.254.169.254/latest/meta-data/"), 403);
  assert.equal(await anyStatus("http://[::1]:8080/"), 403);
  assert.equal(await anyStatus("http://2130706433/"), 403, "127.0.0.1 as an integer");
  assert.equal(await anyStatus("http://unknown.invalid/"), 502);
  await assert.rejects(any.check("http://10.1.1.1/"), UrlRefusedError);

  const wild = createUrlPolicy({ allowedHosts: ["*.s3.amazonaws.com"], allowPrivateNetworks: false, lookup });
  await wild.check("https://x.s3.amazonaws.com/k");
  await assert.rejects(wild.check("https://s3.amazonaws.com.evil.example/k"), UrlRefusedError);

  const some = createUrlPolicy({ allowedHosts: "*", allowPrivateNetworks: ["127.0.0.1"], lookup });
  await some.check("http://127.0.0.1:1234/x");
  await assert.rejects(some.check("http://10.0.0.1/x"), UrlRefusedError);
});

test("urlPolicy: the connect-time lookup refuses private answers (DNS rebinding)", async () => {
  let calls = 0;
  // public when checked, loopback when connecting
  const lookup: LookupFn = async () => (calls++ === 0 ? [{ address: "8.8.8.8", family: 4 }] : [{ address: "127.0.0.1", family: 4 }]);
  const policy = createUrlPolicy({ allowedHosts: ["rebind.example"], allowPrivateNetworks: false, lookup, dnsCacheTtlMs: 0 });
  await policy.check("http://rebind.example/x");
  const viaConnect = (opts: { all?: boolean; family?: number }) =>
    new Promise<unknown>((resolve, reject) =>
      policy.connectLookup("rebind.example", opts, (err, address) => (err ? reject(err) : resolve(address))),
    );
  await assert.rejects(viaConnect({ all: true }), (e: unknown) => e instanceof UrlRefusedError && e.statusHint === 403);
  const exempt = createUrlPolicy({ allowedHosts: "*", allowPrivateNetworks: ["local.test"], lookup: async () => [{ address: "127.0.0.1", family: 4 }] });
  const got = await new Promise<unknown>((resolve, reject) =>
    exempt.connectLookup("local.test", { all: true }, (err, address) => (err ? reject(err) : resolve(address))),
  );
  assert.deepEqual(got, [{ address: "127.0.0.1", family: 4 }]);
  const single = await new Promise<unknown>((resolve, reject) =>
    exempt.connectLookup("local.test", {}, (err, address, family) => (err ? reject(err) : resolve([address, family]))),
  );
  assert.deepEqual(single, ["127.0.0.1", 4]);
});

test("key: normalization, options, validator", () => {
  const opts = buildOptions({});
  assert.deepEqual(opts, { chunksThreshold: 1000, splitBytes: 20_000_000 });
  assert.deepEqual(buildOptions({ chunksThreshold: "none", splitBytes: 5 }), { chunksThreshold: null, splitBytes: 5 });
  assert.equal(normalizeUrl(new URL("HTTP://Example.ORG:80/a/./b/../c#frag")), "http://example.org/a/c");
  const s = { url: "u", resolvedUrl: "u", size: 10, etag: 'W/"abc"', lastModified: "Mon" };
  assert.equal(sourceValidator(s), 'etag:"abc"');
  assert.equal(sourceValidator({ ...s, etag: null }), "lm:Mon|size:10");
  assert.equal(sourceValidator({ ...s, etag: null, lastModified: null }), "size:10");
  const k = cacheKey("http://e/x", opts, "etag:1");
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(k, cacheKey("http://e/x", { ...opts }, "etag:1"));
  assert.notEqual(k, cacheKey("http://e/x", opts, "etag:2"));
  assert.notEqual(k, cacheKey("http://e/x", { ...opts, splitBytes: null }, "etag:1"));
  assert.notEqual(k, cacheKey("http://e/y", opts, "etag:1"));
});

test("negotiate: Accept-Encoding and If-None-Match", () => {
  assert.equal(chooseEncoding(undefined), "identity");
  assert.equal(chooseEncoding("gzip, deflate"), "gzip");
  assert.equal(chooseEncoding("gzip, deflate, br"), "br");
  assert.equal(chooseEncoding("br;q=0.5, gzip"), "gzip");
  assert.equal(chooseEncoding("br;q=0, gzip;q=0"), "identity");
  assert.equal(chooseEncoding("*"), "br");
  assert.equal(chooseEncoding("identity"), "identity");
  const h = "0123456789abcdef0123456789abcdef";
  assert.equal(matchesIfNoneMatch(`"${h}"`, h), true);
  assert.equal(matchesIfNoneMatch(`W/"${h}-gzip"`, h), true);
  assert.equal(matchesIfNoneMatch(`"other", "${h}-br"`, h), true);
  assert.equal(matchesIfNoneMatch(`"other"`, h), false);
  assert.equal(matchesIfNoneMatch("*", h), true);
  assert.equal(matchesIfNoneMatch(undefined, h), false);
});

test("errors: build and source failures map to the documented statuses", () => {
  assert.equal(toHttpError(new LindiConversionError("/x", "external link")).statusCode, 422);
  assert.equal(toHttpError(new NotHdf5Error("no signature")).statusCode, 422);
  assert.equal(toHttpError({ name: "NotHdf5Error", message: "from a worker" }).statusCode, 422);
  assert.equal(toHttpError(new SourceNotFoundError("http://e/x")).statusCode, 404);
  assert.equal(toHttpError(new OriginTimeoutError("slow", "http://e/x")).statusCode, 504);
  assert.equal(toHttpError(new SourceChangedError("etag", "http://e/x")).statusCode, 502);
  assert.equal(toHttpError(new Error("bug")).statusCode, 500);
  assert.equal(toHttpError(new Error("bug")).message, "internal error");
});
