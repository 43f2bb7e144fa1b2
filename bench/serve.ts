/**
 * bench/serve: cached `GET /lindi` throughput and latency for a large (~25 MB)
 * and a small (~50 KB) index, against a plain static server (Node `http` +
 * `fs.createReadStream`) serving the same bytes, measured in the same run.
 * Target: the service reaches at least 0.5x the static server's throughput.
 *
 * Run: npx tsx bench/serve.ts [--seconds 5] [--connections 8]
 */
import h5wasm from "h5wasm";
import { createReadStream, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Pool } from "undici";
import { defaultConfig, type ServiceConfig } from "../src/config.ts";
import { loadH5wasm } from "../src/hdf5/h5wasmRuntime.ts";
import { buildServer } from "../src/server.ts";
import { startRangeOrigin } from "../test/support/rangeOrigin.ts";
import { runWithServiceFlags } from "./support/serviceFlags.ts";

// the service runs in this process: with the node flags it runs with in production
runWithServiceFlags();

const { values } = parseArgs({ options: { seconds: { type: "string", default: "5" }, connections: { type: "string", default: "8" } } });
const seconds = Number(values.seconds);
const connections = Number(values.connections);

/** An HDF5 file whose index has about `chunkRefs` chunk refs (written with h5wasm). */
async function makeHdf5(dir: string, name: string, datasets: number, chunksPer: number): Promise<string> {
  const m = await loadH5wasm();
  const f = new h5wasm.File(name, "w");
  for (let d = 0; d < datasets; d++) {
    const data = new Int16Array(64 * chunksPer).map((_, i) => i % 100);
    f.create_dataset({ name: `d${d}`, data, shape: [data.length], chunks: [64] });
  }
  f.close();
  const out = join(dir, name);
  writeFileSync(out, m.FS.readFile(name) as Uint8Array);
  m.FS.unlink(name);
  return out;
}

interface LoadResult {
  rps: number;
  mbps: number;
  p50: number;
  p99: number;
}

/** `connections` concurrent loops of GET `path` for `seconds`; every body is read fully. */
async function load(origin: string, path: string, headers: Record<string, string> = {}): Promise<LoadResult> {
  const pool = new Pool(origin, { connections });
  const latencies: number[] = [];
  let bytes = 0;
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (performance.now() < end) {
        const t0 = performance.now();
        const res = await pool.request({ path, method: "GET", headers });
        if (res.statusCode !== 200) throw new Error(`${path}: HTTP ${res.statusCode}`);
        for await (const chunk of res.body) bytes += (chunk as Buffer).length;
        latencies.push(performance.now() - t0);
      }
    }),
  );
  await pool.close();
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? NaN;
  return { rps: latencies.length / seconds, mbps: bytes / seconds / 1e6, p50: q(0.5), p99: q(0.99) };
}

function staticServer(file: string): Promise<{ server: Server; base: string }> {
  const server = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": statSync(file).size });
    createReadStream(file).pipe(res);
  });
  return new Promise((ok) => server.listen(0, "127.0.0.1", () => {
    const addr = server.address() as { port: number };
    ok({ server, base: `http://127.0.0.1:${addr.port}` });
  }));
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lindi-bench-serve-"));
  const origin = await startRangeOrigin({ root: dir });
  const config: ServiceConfig = {
    ...defaultConfig(),
    host: "127.0.0.1",
    logLevel: "silent",
    cacheDir: join(dir, "cache"),
    allowedHosts: ["127.0.0.1"],
    allowPrivateNetworks: true,
    maxEventLoopDelayMs: 0,
  };
  const app = await buildServer(config);
  await app.listen({ port: 0, host: "127.0.0.1" });
  const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const rows = [["index", "server", "req/s", "MB/s", "p50 ms", "p99 ms", "ratio (req/s vs static)"]];
  try {
    const cases = [
      { label: "large", file: await makeHdf5(dir, "large.h5", 380, 1000) },
      { label: "small", file: await makeHdf5(dir, "small.h5", 90, 12) },
    ];
    for (const c of cases) {
      const url = origin.url(c.file.slice(dir.length + 1));
      const path = `/lindi?url=${encodeURIComponent(url)}`;
      const first = await fetch(base + path);
      const body = new Uint8Array(await first.arrayBuffer());
      if (first.status !== 200) throw new Error(`build failed: ${first.status} ${new TextDecoder().decode(body)}`);
      const jsonFile = join(dir, `${c.label}.lindi.json`);
      writeFileSync(jsonFile, body);
      const label = `${c.label} (${(body.length / 1e6).toFixed(2)} MB)`;
      const stat = await staticServer(jsonFile);
      try {
        const s = await load(stat.base, "/");
        const l = await load(base, path);
        rows.push([label, "static (node http + fs)", s.rps.toFixed(0), s.mbps.toFixed(0), s.p50.toFixed(2), s.p99.toFixed(2), "1.00"]);
        rows.push([label, "GET /lindi (cached)", l.rps.toFixed(0), l.mbps.toFixed(0), l.p50.toFixed(2), l.p99.toFixed(2), (l.rps / s.rps).toFixed(2)]);
        const g = await load(base, path, { "accept-encoding": "gzip" });
        rows.push([label, "GET /lindi (cached, gzip)", g.rps.toFixed(0), g.mbps.toFixed(0), g.p50.toFixed(2), g.p99.toFixed(2), (g.rps / s.rps).toFixed(2)]);
      } finally {
        stat.server.close();
      }
    }
  } finally {
    await app.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${connections} connections, ${seconds} s per row`);
  for (const r of rows) console.log("| " + r.join(" | ") + " |");
}

await main();
