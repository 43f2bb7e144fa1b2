/**
 * bench/index-local: indexing time and peak memory for (1) every corpus
 * file and (2) a large generated file (2,000 datasets, 200,000 chunks,
 * written here with h5wasm). The baseline, measured in the same run, is
 * phase A alone (h5wasm walking the same file): the ratio shows what the
 * layout reader + emitter + serializer add on top of reading the tree.
 *
 * Run: npx tsx bench/index-local.ts [--datasets N] [--chunks-per-dataset N]
 */
import h5wasm from "h5wasm";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { loadH5wasm, localFileReader } from "../src/hdf5/h5wasmRuntime.ts";
import { indexLocalFile, walkHdf5 } from "../src/lindi/indexHdf5.ts";
import { stringifyPython } from "../src/lindi/pythonJson.ts";

const { values } = parseArgs({
  options: { datasets: { type: "string", default: "2000" }, "chunks-per-dataset": { type: "string", default: "100" } },
});
const nDatasets = Number(values.datasets);
const chunksPer = Number(values["chunks-per-dataset"]);
const corpusDir = resolve(import.meta.dirname, "../../shared/corpus/files");

let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 20);

async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = performance.now();
  const value = await fn();
  return { ms: performance.now() - t0, value };
}

async function walkOnly(path: string): Promise<void> {
  const l = localFileReader(path);
  try {
    await walkHdf5(l.size, l.reader);
  } finally {
    l.close();
  }
}

async function generateLargeFile(dir: string): Promise<string> {
  const m = await loadH5wasm();
  const name = "bench_large.h5";
  const f = new h5wasm.File(name, "w");
  const chunk = 256; // int32 elements per chunk
  for (let g = 0; g < nDatasets / 100; g++) {
    const grp = f.create_group(`group_${g}`);
    for (let d = 0; d < 100; d++) {
      const data = new Int32Array(chunk * chunksPer);
      for (let i = 0; i < data.length; i++) data[i] = (i * 7 + d) % 1000;
      grp.create_dataset({ name: `data_${d}`, data, shape: [data.length], chunks: [chunk], compression: 1 });
      (grp.get(`data_${d}`) as InstanceType<typeof h5wasm.Dataset>).create_attribute("unit", "volts");
    }
  }
  f.close();
  const bytes = m.FS.readFile(name) as Uint8Array;
  m.FS.unlink(name);
  const out = join(dir, name);
  writeFileSync(out, bytes);
  return out;
}

async function main(): Promise<void> {
  const rows: string[][] = [["case", "files", "baseline: walk only (ms)", "index (ms)", "ratio", "output MB"]];
  const features = JSON.parse(readFileSync(join(corpusDir, "features.json"), "utf8")) as { path: string; open_ok: boolean }[];
  const files = features.filter((f) => f.open_ok).map((f) => join(corpusDir, f.path));
  let walkMs = 0;
  let indexMs = 0;
  let outBytes = 0;
  let failed = 0;
  for (const file of files) {
    walkMs += (await timed(() => walkOnly(file).catch(() => undefined))).ms;
    const r = await timed(() => indexLocalFile(file, { url: "corpus://x" }).then((d) => stringifyPython(d as never)).catch(() => null));
    indexMs += r.ms;
    if (r.value === null) failed++;
    else outBytes += r.value.length;
  }
  rows.push(["whole corpus", `${files.length} (${failed} not convertible)`, walkMs.toFixed(0), indexMs.toFixed(0), (indexMs / walkMs).toFixed(2), (outBytes / 1e6).toFixed(1)]);

  const dir = mkdtempSync(join(tmpdir(), "lindi-bench-"));
  try {
    const big = await generateLargeFile(dir);
    const size = statSync(big).size;
    const w = await timed(() => walkOnly(big));
    const r = await timed(async () => stringifyPython((await indexLocalFile(big, { url: "https://example.org/big.h5" })) as never));
    const refs = (r.value.match(/"\{\{u1\}\}"/g) ?? []).length;
    rows.push([`generated: ${nDatasets} datasets, ${refs} chunk refs, ${(size / 1e6).toFixed(0)} MB`, "1", w.ms.toFixed(0), r.ms.toFixed(0), (r.ms / w.ms).toFixed(2), (r.value.length / 1e6).toFixed(1)]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  clearInterval(sampler);
  for (const row of rows) console.log("| " + row.join(" | ") + " |");
  console.log(`peak RSS: ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
}

await main();
