/**
 * bench/slice: GET /slice latency (format=bin) for 1-, 100- and 1000-chunk
 * selections, cold and warm, with the origin at 0 and 20 ms latency (and at
 * 20 ms with each connection capped at 20 MB/s, like a cloud object store),
 * against h5wasm reading a local copy of the same file in the same run.
 *
 *   file     one float32 dataset, 1000 chunks of 4096 elements (16 KiB), gzip level 4,
 *            written with h5wasm; served by the loopback range origin (in its own process)
 *   service  the real server (index already built and cached); `cold` = answer and chunk caches,
 *            opened sources and HTTP redirects/sources forgotten (the parsed index and the source
 *            probe are kept: those are per file, not per read); `warm` = the same request again
 *            (answered from the answer cache); `warm, answer made again` = the same with the
 *            answer cache emptied first (chunks cached and decoded, the answer read and encoded)
 *   local    h5wasm on the file in its in-memory FS; `cold` = open the file + read + close,
 *            `warm` = read again on the open file
 *   both     first warmed up as a running service is: 10,000 warm one-chunk reads and 300 cold
 *            100-chunk reads (open + read + close locally) elsewhere in the file, so that V8 has
 *            compiled both paths; caches are cleared afterwards
 *
 * Medians of --runs runs (default 7; warm: 15 reads per run); local and service take
 * turns run by run. Targets: warm within 1.5x of local, cold at 20 ms within 3x.
 *
 * Run: npx tsx bench/slice.ts [--runs 7] [--markdown]
 */
import h5wasm from "h5wasm";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { defaultConfig } from "../src/config.ts";
import { loadH5wasm } from "../src/hdf5/h5wasmRuntime.ts";
import { buildServer } from "../src/server.ts";
import { startOriginProcess } from "./support/originProcess.ts";
import { runWithServiceFlags, serviceNodeFlags } from "./support/serviceFlags.ts";

// the service runs in this process: with the node flags it runs with in production
runWithServiceFlags();

const { values } = parseArgs({ options: { runs: { type: "string", default: "7" }, markdown: { type: "boolean", default: false } } });
const RUNS = Math.max(1, Number(values.runs));
/** Warm reads measured after each cold one (warm medians are over RUNS × this). */
const WARM_SAMPLES = 15;
/** Warm one-chunk reads run by both methods before measuring. */
const WARM_UP = 10_000;
/** Cold 100-chunk reads (caches cleared; open + read + close locally) run by both methods before measuring. */
const COLD_WARM_UP = 300;

const CHUNK = 4096;
const CHUNKS = 1000;
const DATASET = "/data";

/** The bench file: smooth signal + noise (compresses ~2x), written with h5wasm. */
async function makeFile(dir: string): Promise<string> {
  const m = await loadH5wasm();
  const name = "bench_slice.h5";
  const f = new h5wasm.File(name, "w");
  const data = new Float32Array(CHUNK * CHUNKS);
  let seed = 1;
  for (let i = 0; i < data.length; i++) {
    seed = (seed * 1103515245 + 12345) >>> 0;
    data[i] = Math.round((Math.sin(i / 500) * 1000 + (seed / 2 ** 32) * 10) * 16) / 16;
  }
  f.create_dataset({ name: DATASET.slice(1), data, shape: [data.length], chunks: [CHUNK], compression: "gzip", compression_opts: 4 });
  f.close();
  const out = join(dir, name);
  writeFileSync(out, m.FS.readFile(name) as Uint8Array);
  m.FS.unlink(name);
  return out;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

interface Case {
  label: string;
  chunks: number;
  select: string;
  range: [number, number];
}

const CASES: Case[] = [
  { label: "1 chunk", chunks: 1, select: `${5 * CHUNK}:${6 * CHUNK}`, range: [5 * CHUNK, 6 * CHUNK] },
  { label: "100 chunks", chunks: 100, select: `${200 * CHUNK}:${300 * CHUNK}`, range: [200 * CHUNK, 300 * CHUNK] },
  { label: "1000 chunks", chunks: 1000, select: "", range: [0, CHUNKS * CHUNK] },
];

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lindi-bench-slice-"));
  const cacheDir = join(dir, "cache");
  const file = await makeFile(dir);
  // the origin runs in its own process: its work is not the service's
  const origin = await startOriginProcess(dir);
  const app = await buildServer({
    ...defaultConfig(),
    port: 0,
    host: "127.0.0.1",
    logLevel: "warn",
    cacheDir,
    allowedHosts: ["127.0.0.1"],
    allowPrivateNetworks: true,
    probeTtlSeconds: 3600,
    maxEventLoopDelayMs: 0,
  });
  await app.listen({ port: 0, host: "127.0.0.1" });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const pool = new Pool(base, { connections: 4 });
  const url = encodeURIComponent(origin.url("bench_slice.h5"));

  const get = async (path: string): Promise<number> => {
    const t0 = performance.now();
    const res = await pool.request({ path, method: "GET" });
    let n = 0;
    for await (const c of res.body) n += (c as Buffer).length;
    if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
    void n;
    return performance.now() - t0;
  };
  // build the index once (not measured)
  await get(`/lindi?url=${url}`);

  // h5wasm on a local copy
  const m = await loadH5wasm();
  const bytes = readFileSync(file);
  m.FS.writeFile("/local_copy.h5", bytes);
  const localRead = (f: InstanceType<typeof h5wasm.File>, c: Case) => {
    const ds = f.get(DATASET) as InstanceType<typeof h5wasm.Dataset>;
    const v = ds.slice([[c.range[0], c.range[1]]]) as Float32Array;
    if (v.length !== c.range[1] - c.range[0]) throw new Error("short local read");
  };

  // a long-running service has compiled its request paths long before a user arrives: run both
  // methods on chunks the measured cases do not touch (then clear the caches). V8 is still
  // compiling the warm path after 2,000 requests (0.8 ms of CPU per warm read, 0.2 ms after
  // 10,000), and a cold multi-chunk read (prefetch, merged requests, inflate workers) runs
  // unoptimized code unless cold reads were warmed up too (cold 100 chunks at 0 ms: 39 → 21 ms)
  {
    const warm: Case = { label: "warm-up", chunks: 1, select: `${900 * CHUNK}:${901 * CHUNK}`, range: [900 * CHUNK, 901 * CHUNK] };
    const cold: Case = { label: "warm-up", chunks: 100, select: `${600 * CHUNK}:${700 * CHUNK}`, range: [600 * CHUNK, 700 * CHUNK] };
    const f = new h5wasm.File("/local_copy.h5", "r");
    for (let i = 0; i < WARM_UP; i++) {
      if (i % 2 === 0) app.lindiData.answers.clear(); // both warm paths: answer kept, answer made again
      await get(`/slice?url=${url}&path=${DATASET}&select=${warm.select}&format=bin`);
      localRead(f, warm);
    }
    f.close();
    for (let i = 0; i < COLD_WARM_UP; i++) {
      app.lindiData.clearCaches();
      await get(`/slice?url=${url}&path=${DATASET}&select=${cold.select}&format=bin`);
      const g = new h5wasm.File("/local_copy.h5", "r");
      localRead(g, cold);
      g.close();
    }
    app.lindiData.clearCaches();
  }

  const rows: string[][] = [];
  const profiles = [
    { label: "0 ms", latencyMs: 0 },
    { label: "20 ms", latencyMs: 20 },
    { label: "20 ms, 20 MB/s per connection", latencyMs: 20, bandwidthBytesPerSec: 20e6 },
  ];
  for (const profile of profiles) {
    const { label: latency, ...faults } = profile;
    await origin.setFaults(faults);
    for (const c of CASES) {
      const q = `/slice?url=${url}&path=${DATASET}&select=${c.select}&format=bin`;
      // local and service take turns, run by run, so that a drift of this machine's speed
      // during the cell shows on both sides
      const localCold: number[] = [];
      const localWarm: number[] = [];
      const cold: number[] = [];
      const warm: number[] = [];
      const warmDecoded: number[] = [];
      for (let r = 0; r < RUNS; r++) {
        const t0 = performance.now();
        const f = new h5wasm.File("/local_copy.h5", "r");
        localRead(f, c);
        localCold.push(performance.now() - t0);
        localRead(f, c); // the first read after a cold one is not yet warm (on either side)
        for (let k = 0; k < WARM_SAMPLES; k++) {
          const t1 = performance.now();
          localRead(f, c);
          localWarm.push(performance.now() - t1);
        }
        f.close();

        app.lindiData.clearCaches();
        cold.push(await get(q));
        await get(q);
        for (let k = 0; k < WARM_SAMPLES; k++) warm.push(await get(q));
        // the same with the answer forgotten each time: chunks decoded and cached, the answer made again
        for (let k = 0; k < WARM_SAMPLES; k++) {
          app.lindiData.answers.clear();
          warmDecoded.push(await get(q));
        }
      }
      const lc = median(localCold);
      const lw = median(localWarm);
      const sc = median(cold);
      const sw = median(warm);
      const sd = median(warmDecoded);
      rows.push([
        latency,
        c.label,
        lc.toFixed(2),
        sc.toFixed(2),
        (sc / lc).toFixed(2),
        lw.toFixed(2),
        sw.toFixed(2),
        (sw / lw).toFixed(2),
        sd.toFixed(2),
        (sd / lw).toFixed(2),
      ]);
      console.error(`${latency} ${c.label}: local cold ${lc.toFixed(2)} / warm ${lw.toFixed(2)}; service cold ${sc.toFixed(2)} / warm ${sw.toFixed(2)} / warm, answer made again ${sd.toFixed(2)} ms`);
    }
  }
  const header = [
    "origin",
    "selection",
    "local cold (ms)",
    "service cold (ms)",
    "cold ratio",
    "local warm (ms)",
    "service warm (ms)",
    "warm ratio",
    "service warm, answer made again (ms)",
    "its ratio",
  ];
  const table = [`| ${header.join(" | ")} |`, `|${header.map(() => "---").join("|")}|`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");
  console.log(table);
  // the floor under every service number: one loopback HTTP exchange with an empty answer
  const floor: number[] = [];
  for (let i = 0; i < 5000; i++) {
    const t = await get("/healthz");
    if (i >= 3000) floor.push(t); // the first 3,000 warm it up
  }
  console.log(`\nGET /healthz (the loopback HTTP exchange alone): median ${median(floor).toFixed(3)} ms`);
  if (!values.markdown) {
    const stats = app.lindiData.chunkCache.stats;
    console.log(`\nchunk cache: ${stats.hits} hits, ${stats.misses} misses, ${(stats.fetchedBytes / 1e6).toFixed(1)} MB fetched; file ${(bytes.length / 1e6).toFixed(1)} MB; ${RUNS} runs per cell (medians); node flags ${serviceNodeFlags().join(" ")}`);
  }
  m.FS.unlink("/local_copy.h5");
  await pool.close();
  await app.close();
  await origin.close();
  rmSync(dir, { recursive: true, force: true });
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
