/**
 * `lindi precompute` as a user runs it (a child process, output not a TTY)
 * against the loopback range origin and the loopback DANDI API stand-in:
 * plain progress lines, the mirror layout, failures with reasons and exit
 * status 1, resuming after an interruption, skipping on a second run, URL
 * lists, output identical to the service's, usage errors.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { request } from "undici";
import { defaultConfig } from "../src/config.ts";
import { GENERATOR } from "../src/jobs/generator.ts";
import { urlMirrorPath } from "../src/jobs/paths.ts";
import { buildServer } from "../src/server.ts";
import { repoRoot, requireCorpus } from "./support/corpus.ts";
import { corpusAssets, startDandiApi, type DandiApi, type StandInAsset } from "./support/dandiApi.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";
import { listenLoopback } from "./support/service.ts";

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  out: string;
  err: string;
}

/** Runs the CLI; `onErr` sees stderr as it grows and may return a signal to send. */
function lindi(args: string[], onErr?: (err: string) => NodeJS.Signals | undefined): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], { cwd: repoRoot, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let sent = false;
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      const sig = !sent ? onErr?.(err) : undefined;
      if (sig) {
        sent = true;
        child.kill(sig);
      }
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, out, err }));
  });
}

const root = requireCorpus();
let origin: RangeOrigin;
let api: DandiApi;
let good: StandInAsset[];
const MISSING = "5b1f0d2e-0000-4000-a000-000000000404";
const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const d = await mkdtemp(path.join(tmpdir(), "lindi-precompute-test-"));
  dirs.push(d);
  return d;
}

before(async () => {
  origin = await startRangeOrigin({ root });
  good = corpusAssets(root, (r) => origin.url(r), "cli-201", 12);
  api = await startDandiApi({
    dandisets: {
      "000201": {
        draft: [
          ...good.slice(0, 6),
          { asset_id: MISSING, path: "sub-x/sub-x_missing.nwb", size: 1, target: origin.url("no/such.nwb") },
          { asset_id: "5b1f0d2e-0000-4000-a000-00000000a001", path: "sub-x/movie.mp4", size: 1, target: origin.url("features.json") },
          ...good.slice(6),
        ],
      },
    },
    maxPageSize: 4,
  });
});
after(async () => {
  await api?.close();
  await origin?.close();
  await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const assetDir = (out: string, id: string) => path.join(out, "dandi/dandisets/000201/assets", id);
const itemLines = (err: string, kind: string) => err.split("\n").filter((l) => new RegExp(`^\\[\\s*\\d+/13\\] ${kind}`).test(l));

test("a dandiset: plain progress lines, the mirror layout, failures with reasons (exit 1); interrupted runs resume; a second run skips", async () => {
  const out = await tempDir();
  const args = ["precompute", "--dandiset", "000201", "--api", api.apiUrl, "--out-dir", out, "--concurrency", "2"];

  // first run, interrupted after a few items (slow origin)
  origin.updateFaults({ latencyMs: 40 });
  let first: Run;
  try {
    first = await lindi(args, (err) => (itemLines(err, "built").length >= 3 ? "SIGINT" : undefined));
  } finally {
    origin.updateFaults({ latencyMs: 0 });
  }
  assert.equal(first.code, 130, first.err);
  assert.match(first.err, /^listing dandiset 000201 version draft from http:\/\/127\.0\.0\.1:\d+\/api$/m);
  assert.match(first.err, /^13 items -> /m, "12 good + 1 missing NWB assets; the movie is left out");
  assert.match(first.err, /interrupted: .*run the same command again to resume/);
  const builtFirst = itemLines(first.err, "built").length;
  assert.ok(builtFirst >= 3 && builtFirst < 13, first.err);
  assert.doesNotMatch(first.err, /[\r\x1b]/, "no terminal control characters off a TTY");

  // resumed: what was finished is skipped, the rest is built; the missing asset fails with its reason
  const second = await lindi(args);
  assert.equal(second.code, 1, second.err);
  const builtLines = itemLines(second.err, "built");
  const skippedLines = itemLines(second.err, "skipped");
  assert.equal(skippedLines.length, builtFirst, second.err);
  assert.equal(builtLines.length, 12 - builtFirst, second.err);
  for (const l of builtLines) assert.match(l, /^\[\s*\d+\/13\] built {3}dandi\/dandisets\/000201\/assets\/[0-9a-f-]+\/nwb\.lindi\.json {2}index .*, fetched .*, [\d.]+ s \| .* fetched, .*\/s, .* items\/s, ETA \d+:\d\d$/);
  const failed = itemLines(second.err, "FAILED ");
  assert.equal(failed.length, 1);
  assert.match(failed[0]!, new RegExp(`assets/${MISSING}/nwb\\.lindi\\.json: source not found \\(404\\)`));
  assert.match(second.err, new RegExp(`^done: ${12 - builtFirst} built, ${builtFirst} skipped, 1 failed of 13 in `, "m"));
  assert.match(second.err, new RegExp(`failed items \\(1\\):\\n  dandi/dandisets/000201/assets/${MISSING}/nwb\\.lindi\\.json  ${api.apiUrl}/assets/${MISSING}/download/\\n    source not found`));
  for (const a of good) {
    const info = JSON.parse(await readFile(path.join(assetDir(out, a.asset_id), "info.json"), "utf8")) as Record<string, unknown>;
    assert.deepEqual(info.generator, { ...GENERATOR });
    assert.equal(info.url, `${api.apiUrl}/assets/${a.asset_id}/download/`);
    const index = await readFile(path.join(assetDir(out, a.asset_id), "nwb.lindi.json"));
    assert.equal(info.indexBytes, index.byteLength);
  }
  assert.ok(!existsSync(assetDir(out, MISSING)));

  // everything there: skipped (a changed generator or source would rebuild: see jobs-units)
  await unlink(path.join(assetDir(out, good[0]!.asset_id), "info.json"));
  const third = await lindi(args);
  assert.equal(third.code, 1);
  assert.equal(itemLines(third.err, "built").length, 1, "the item without info.json is built again");
  assert.equal(itemLines(third.err, "skipped").length, 11);
});

test("a URL list: exit 0, and the same bytes as the service's GET /lindi", async () => {
  const out = await tempDir();
  const a = origin.url("pynwb/tests/back_compat/1.0.2_str_experimenter.nwb");
  const b = origin.redirectUrl("matnwb/_history/e7401f8e7d/tutorials/ecephys_tutorial.nwb", 1);
  const list = path.join(out, "urls.txt");
  await writeFile(list, `# two sources\n${a}\n${b} mine/ecephys.lindi.json\n`);
  const run = await lindi(["precompute", "--urls", list, "--out-dir", out]);
  assert.equal(run.code, 0, run.err);
  assert.match(run.err, /^done: 2 built, 0 skipped, 0 failed of 2 in /m);
  const fileA = await readFile(path.join(out, urlMirrorPath(a)));
  const fileB = await readFile(path.join(out, "mine/ecephys.lindi.json"));

  const cacheDir = await tempDir();
  const app = await buildServer({ ...defaultConfig(), logLevel: "silent", cacheDir, allowedHosts: ["127.0.0.1"], allowPrivateNetworks: true, poolSize: 1, maxEventLoopDelayMs: 0 });
  try {
    const base = await listenLoopback(app);
    for (const [u, f] of [[a, fileA], [b, fileB]] as const) {
      const res = await request(`${base}/lindi?url=${encodeURIComponent(u)}`);
      assert.equal(res.statusCode, 200);
      assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(f), `CLI and service agree for ${u}`);
    }
  } finally {
    await app.close();
  }
});

test("usage errors exit 2 with the reason", async () => {
  const out = await tempDir();
  for (const [args, re] of [
    [["precompute", "--out-dir", out], /needs --urls FILE or --dandiset ID/],
    [["precompute", "--dandiset", "000201"], /needs --out-dir/],
    [["precompute", "--dandiset", "201", "--out-dir", out], /--dandiset must be 6 digits/],
    [["precompute", "--urls", path.join(out, "none.txt"), "--out-dir", out], /cannot read --urls/],
    [["precompute", "--dandiset", "000201", "--out-dir", out, "--concurrency", "0"], /--concurrency must be an integer/],
  ] as Array<[string[], RegExp]>) {
    const r = await lindi(args);
    assert.equal(r.code, 2, r.err);
    assert.match(r.err, re);
  }
});
