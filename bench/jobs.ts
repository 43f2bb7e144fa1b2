/**
 * bench/jobs: latency of interactive `GET /lindi` requests while a
 * precompute job runs vs. while the service is idle, in the same run.
 * Target: at most 2x the idle latency (p50) with the default job
 * concurrency (LINDI_JOB_CONCURRENCY: half the pool).
 *
 * Interactive workloads, one request at a time (a viewer opening files):
 *   cached — GET /lindi of an index already in the cache
 *   cold   — GET /lindi of a source not seen before (probe + build + store)
 * The job: a dandiset of corpus NWB files under distinct asset ids (loopback
 * DANDI stand-in + range origin), large enough to outlast the measurement;
 * cancelled afterwards. For comparison, the same with the job allowed the
 * whole pool (concurrency = LINDI_POOL_SIZE).
 *
 * Run: npx tsx bench/jobs.ts [--seconds 8] [--cold 30] [--latency-ms 2] [--pool N]
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { defaultConfig, type ServiceConfig } from "../src/config.ts";
import { jobSettings } from "../src/jobs/index.ts";
import { buildServer } from "../src/server.ts";
import { corpusAssets, CORPUS_NWB, startDandiApi } from "../test/support/dandiApi.ts";
import { requireCorpus } from "../test/support/corpus.ts";
import { startRangeOrigin } from "../test/support/rangeOrigin.ts";
import { runWithServiceFlags } from "./support/serviceFlags.ts";

// the service runs in this process: with the node flags it runs with in production
runWithServiceFlags();

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    cold: { type: "string", default: "30" },
    "latency-ms": { type: "string", default: "2" },
    pool: { type: "string" },
  },
});
const seconds = Number(values.seconds);
const coldCount = Number(values.cold);
const latencyMs = Number(values["latency-ms"]);

interface Stats {
  n: number;
  p50: number;
  p95: number;
  max: number;
}

function stats(ms: number[]): Stats {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))] ?? NaN;
  return { n: s.length, p50: q(0.5), p95: q(0.95), max: s[s.length - 1] ?? NaN };
}

async function get(pool: Pool, path: string): Promise<number> {
  const t0 = performance.now();
  const res = await pool.request({ path, method: "GET" });
  await res.body.arrayBuffer();
  if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
  return performance.now() - t0;
}

async function main(): Promise<void> {
  const root = requireCorpus();
  const dir = mkdtempSync(join(tmpdir(), "lindi-bench-jobs-"));
  const origin = await startRangeOrigin({ root, latencyMs });
  const api = await startDandiApi({ dandisets: {}, maxPageSize: 100 });
  const base: ServiceConfig = {
    ...defaultConfig(),
    host: "127.0.0.1",
    logLevel: "silent",
    allowedHosts: ["127.0.0.1"],
    allowPrivateNetworks: true,
    maxEventLoopDelayMs: 0,
    probeTtlSeconds: 0,
    ...(values.pool ? { poolSize: Number(values.pool) } : {}),
  };
  let coldSeq = 0;
  const rows: string[][] = [];
  const summary: string[] = [];
  let idleRef: { cached: Stats; cold: Stats } | undefined;

  /** One server; `jobConcurrency` 0 = the default. Returns latencies idle and during a job. */
  async function scenario(label: string, jobConcurrency: number, withIdle: boolean): Promise<void> {
    const config: ServiceConfig = { ...base, cacheDir: join(dir, `cache-${label.replace(/\W+/g, "-")}`), jobConcurrency };
    const app = await buildServer(config);
    await app.listen({ port: 0, host: "127.0.0.1" });
    const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
    const pool = new Pool(url, { connections: 4 });
    const effective = jobSettings(config).concurrency;
    try {
      // warm up: worker threads, one cached index
      const cachedSource = origin.url(CORPUS_NWB[5]!) + "?bench=cached";
      const cachedPath = `/lindi?url=${encodeURIComponent(cachedSource)}`;
      await get(pool, cachedPath);
      for (let i = 0; i < 2; i++) await get(pool, `/lindi?url=${encodeURIComponent(origin.url(CORPUS_NWB[i]!) + `?bench=warm-${label}-${i}`)}`);

      const measure = async () => {
        const cached: number[] = [];
        const end = performance.now() + seconds * 1000;
        while (performance.now() < end) cached.push(await get(pool, cachedPath));
        const cold: number[] = [];
        for (let i = 0; i < coldCount; i++) {
          const src = origin.url(CORPUS_NWB[i % CORPUS_NWB.length]!) + `?bench=cold-${coldSeq++}`;
          cold.push(await get(pool, `/lindi?url=${encodeURIComponent(src)}`));
        }
        return { cached: stats(cached), cold: stats(cold) };
      };

      const idle = withIdle ? await measure() : undefined;

      // the job: more assets than it can finish during the measurement
      const dandiset = String(100 + rows.length).padStart(6, "0");
      api.setAssets(dandiset, "draft", corpusAssets(root, (r) => origin.url(r), `bench-${label}`, 2000));
      const created = await pool.request({
        path: "/jobs",
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ dandiset, apiUrl: api.apiUrl }),
      });
      const job = (await created.body.json()) as { id: string };
      // let it get going
      for (;;) {
        const s = (await (await pool.request({ path: `/jobs/${job.id}`, method: "GET" })).body.json()) as { counts: { done: number } };
        if (s.counts.done >= 3) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const t0 = performance.now();
      const before = (await (await pool.request({ path: `/jobs/${job.id}`, method: "GET" })).body.json()) as { counts: { done: number } };
      const busy = await measure();
      const after = (await (await pool.request({ path: `/jobs/${job.id}`, method: "GET" })).body.json()) as { counts: { done: number; total: number }; state: string };
      const jobRate = (after.counts.done - before.counts.done) / ((performance.now() - t0) / 1000);
      await (await pool.request({ path: `/jobs/${job.id}`, method: "DELETE" })).body.text();
      if (after.state !== "running") throw new Error(`the job ended during the measurement (${after.state}); use more assets`);

      const fmt = (n: number) => n.toFixed(1);
      if (idle) idleRef = idle;
      for (const kind of ["cached", "cold"] as const) {
        const b = busy[kind];
        const i = idleRef![kind];
        rows.push([
          `${kind} GET /lindi`,
          `${label} (job concurrency ${effective} of pool ${config.poolSize})`,
          idle ? `${fmt(i.p50)} / ${fmt(i.p95)}` : "(as above)",
          `${fmt(b.p50)} / ${fmt(b.p95)}`,
          String(b.n),
          (b.p50 / i.p50).toFixed(2),
          (b.p95 / i.p95).toFixed(2),
        ]);
      }
      summary.push(`${label}: the job built ${jobRate.toFixed(1)} items/s while measured`);
    } finally {
      await pool.close();
      await app.close();
    }
  }

  try {
    await scenario("default", 0, true);
    await scenario("whole pool", base.poolSize, false);
  } finally {
    await api.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`pool ${base.poolSize}, origin latency ${latencyMs} ms/request, cached: ${seconds} s of sequential requests, cold: ${coldCount} sequential first requests`);
  console.log("| workload | job | idle p50 / p95 (ms) | during job p50 / p95 (ms) | requests | ratio p50 | ratio p95 |");
  console.log("|---|---|---|---|---|---|---|");
  for (const r of rows) console.log("| " + r.join(" | ") + " |");
  for (const s of summary) console.log(s);
}

await main();
