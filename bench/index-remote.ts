/**
 * bench/index-remote: indexing a large remote file by range requests vs the
 * naive alternative measured in the same run (download the whole file, then
 * index it locally). The file (≥ 1 GB, 2,000 datasets, 200,000 chunks) is
 * written here with h5wasm's node build, once with the default (earliest)
 * format — v1 B-trees interleaved with the data, as h5py writes them — and
 * once with libver "latest" (fixed/extensible array indexes). A loopback
 * origin adds 0 or 20 ms per request and caps each connection at 100 MB/s.
 * Both methods are warmed up first on a small file of the same shape (the
 * service's pool workers are long-lived: their h5wasm is loaded and their
 * code compiled before a user's build arrives).
 *
 * Run: npx tsx bench/index-remote.ts [--datasets 2000] [--chunks 100] [--chunk-kb 5]
 */
import h5wasmNode from "h5wasm/node";
import { createWriteStream, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { parseArgs } from "node:util";
import { request } from "undici";
import { createIndexBuilder, type RemoteIndexBuilder } from "../src/index/builder.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";
import { startOriginProcess, type OriginProcess } from "./support/originProcess.ts";

const { values } = parseArgs({
  options: {
    datasets: { type: "string", default: "2000" },
    chunks: { type: "string", default: "100" },
    "chunk-kb": { type: "string", default: "5" },
  },
});
const nDatasets = Number(values.datasets);
const chunksPer = Number(values.chunks);
const chunkElems = Math.floor((Number(values["chunk-kb"]) * 1024) / 4);
const MBPS = 100e6;

async function writeFile(path: string, libver: "earliest" | "latest", datasets = nDatasets): Promise<void> {
  await h5wasmNode.ready;
  const f = new h5wasmNode.File(path, "w", libver === "latest" ? { libver: "latest" } : undefined);
  const data = new Float32Array(chunkElems * chunksPer).map((_, i) => Math.sin(i));
  for (let g = 0; g < Math.ceil(datasets / 100); g++) {
    const grp = f.create_group(`probe_${g}`);
    for (let d = 0; d < 100; d++) {
      // chunked, unlimited: an index that grows with the data, interleaved with it in the file
      grp.create_dataset({ name: `data_${d}`, data, shape: [data.length], maxshape: [null], chunks: [chunkElems] });
    }
  }
  f.close();
}

async function download(url: string, to: string): Promise<void> {
  const res = await request(url);
  if (res.statusCode !== 200) throw new Error(`download: HTTP ${res.statusCode}`);
  await pipeline(res.body, createWriteStream(to));
}

interface Row {
  file: string;
  latency: number;
  method: string;
  seconds: number;
  requests: number;
  bytes: number;
  roundTrips: string;
}

async function requestsAndBytes(origin: OriginProcess): Promise<{ requests: number; bytes: number }> {
  const stats = await origin.stats();
  return { requests: stats.requests, bytes: stats.bytes };
}

const BUILD_OPTIONS = { chunksThreshold: 1000, splitBytes: 20_000_000 };

/** One build through each method on a small file, so that neither pays first-use costs in the measurement. */
async function warmUp(origin: OriginProcess, dir: string, builder: RemoteIndexBuilder): Promise<void> {
  const name = "warmup.h5";
  await writeFile(join(dir, name), "earliest", 100);
  await origin.setFaults({ latencyMs: 0 });
  await builder.build(await builder.probe(origin.url(name)), BUILD_OPTIONS);
  stringifyPython((await indexLocalFile(join(dir, name), { url: origin.url(name) })) as never);
  rmSync(join(dir, name), { force: true });
}

async function measure(origin: OriginProcess, dir: string, name: string, latencyMs: number, builder: RemoteIndexBuilder): Promise<Row[]> {
  const url = origin.url(name);
  await origin.setFaults({ latencyMs, bandwidthBytesPerSec: MBPS });
  await origin.resetStats();
  const t0 = performance.now();
  const source = await builder.probe(url);
  const result = await builder.build(source, BUILD_OPTIONS);
  const row = async (method: string, since: number, roundTrips: string): Promise<Row> => ({
    file: name,
    latency: latencyMs,
    method,
    seconds: (performance.now() - since) / 1000,
    ...(await requestsAndBytes(origin)),
    roundTrips,
  });
  const remote = await row("range requests (this service)", t0, String(result.stats.session.roundTrips));
  await origin.resetStats();
  const t1 = performance.now();
  const local = join(dir, `download-${name}`);
  await download(url, local);
  const doc = await indexLocalFile(local, { url });
  const naiveJson = stringifyPython(doc as never);
  const naive = await row("download whole file, then index", t1, "1");
  rmSync(local, { force: true });
  if (new TextDecoder().decode(result.json) !== naiveJson) throw new Error(`${name}: remote and local indexes differ`);
  return [remote, naive];
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "lindi-bench-remote-"));
  // the origin runs in its own process: it must not share the client's event loop
  const origin = await startOriginProcess(dir);
  const builder = createIndexBuilder({ poolSize: 1 });
  const rows: Row[] = [];
  try {
    await warmUp(origin, dir, builder);
    for (const libver of ["earliest", "latest"] as const) {
      const name = `large_${libver}.h5`;
      const t = performance.now();
      await writeFile(join(dir, name), libver);
      const size = statSync(join(dir, name)).size;
      console.error(`wrote ${name}: ${(size / 1e9).toFixed(2)} GB in ${((performance.now() - t) / 1000).toFixed(0)} s`);
      for (const latency of [0, 20]) rows.push(...(await measure(origin, dir, name, latency, builder)));
      rmSync(join(dir, name), { force: true });
    }
  } finally {
    await builder.close();
    await origin.close();
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`${nDatasets} datasets x ${chunksPer} chunks of ${chunkElems * 4} bytes; origin capped at 100 MB/s per connection`);
  console.log("| file | added latency | method | wall s | requests | bytes fetched | critical-path round trips | speed-up |");
  console.log("|---|---|---|---|---|---|---|---|");
  for (let i = 0; i < rows.length; i += 2) {
    const [r, n] = [rows[i]!, rows[i + 1]!];
    for (const x of [r, n]) {
      const speedup = x === r ? `${(n.seconds / r.seconds).toFixed(1)}x` : "1.0x";
      console.log(`| ${x.file} | ${x.latency} ms | ${x.method} | ${x.seconds.toFixed(1)} | ${x.requests} | ${(x.bytes / 1e6).toFixed(1)} MB | ${x.roundTrips} | ${speedup} |`);
    }
  }
}

await main();
