import { relative, resolve, sep } from "node:path";
import { writeFileAtomic } from "../jobs/atomic.ts";
import { parseArgs } from "node:util";
import { indexLocalFile } from "../lindi/indexHdf5.ts";
import { createCliRemoteIndexer } from "../index/remoteCli.ts";
import { DEFAULT_OPTIONS, type LindiDocument } from "../lindi/generate.ts";
import { stringifyPython } from "../lindi/pythonJson.ts";
import { parseLimit, UsageError } from "./args.ts";

export const INDEX_USAGE = `  index <file-or-url>... [-o OUT.lindi.json | --out-dir DIR]
        [--url URL | --base-url PREFIX --root DIR]
        [--chunks-threshold N|none] [--split-bytes N|none]
      Writes the LINDI index of each HDF5/NWB input. With --out-dir, the output
      of input F is DIR/<F relative to --root>.lindi.json and its refs point to
      PREFIX + <F relative to --root>. Without -o/--out-dir, one input's JSON
      goes to standard output.`;

interface IndexJob {
  input: string;
  url: string;
  out: string | null;
}

function planJobs(inputs: string[], values: Record<string, string | boolean | undefined>): IndexJob[] {
  const out = values.out as string | undefined;
  const outDir = values["out-dir"] as string | undefined;
  const url = values.url as string | undefined;
  const baseUrl = values["base-url"] as string | undefined;
  const root = values.root as string | undefined;
  if (inputs.length === 0) throw new UsageError("index needs at least one input file");
  if (out && outDir) throw new UsageError("give -o or --out-dir, not both");
  if (out && inputs.length > 1) throw new UsageError("-o takes one input; use --out-dir for several");
  if (!out && !outDir && inputs.length > 1) throw new UsageError("several inputs need --out-dir");
  if (url && inputs.length > 1) throw new UsageError("--url names one file's URL; use --base-url with --root for several");
  if (url && baseUrl) throw new UsageError("give --url or --base-url, not both");
  if (baseUrl && !root) throw new UsageError("--base-url needs --root (the folder its paths are relative to)");
  return inputs.map((input) => {
    const isUrl = /^https?:\/\//.test(input);
    const rel = root ? relative(resolve(root), resolve(input)) : null;
    if (rel !== null && (rel.startsWith("..") || rel === "")) throw new UsageError(`${input} is not inside --root ${root}`);
    const relPosix = rel?.split(sep).join("/") ?? null;
    const refUrl = url ?? (baseUrl && relPosix ? baseUrl + relPosix : isUrl ? input : resolve(input));
    let target: string | null = out ?? null;
    if (outDir) {
      const name = relPosix ?? input.split(/[\\/]/).pop()!;
      target = resolve(outDir, `${name}.lindi.json`);
    }
    return { input, url: refUrl, out: target };
  });
}

function describe(doc: LindiDocument): string {
  const n = Object.keys(doc.refs).length;
  return `${n} keys`;
}

/** `lindi index`: many inputs in one process, a progress line each, non-zero exit if any failed. */
export async function runIndexCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      out: { type: "string", short: "o" },
      "out-dir": { type: "string" },
      url: { type: "string" },
      "base-url": { type: "string" },
      root: { type: "string" },
      "chunks-threshold": { type: "string" },
      "split-bytes": { type: "string" },
    },
  });
  const chunksThreshold = parseLimit("chunks-threshold", values["chunks-threshold"], DEFAULT_OPTIONS.chunksThreshold);
  const splitBytes = parseLimit("split-bytes", values["split-bytes"], DEFAULT_OPTIONS.splitBytes);
  const jobs = planJobs(positionals, values);
  let failures = 0;
  const remote = createCliRemoteIndexer(); // one worker pool + HTTP client for every URL input
  for (const [i, job] of jobs.entries()) {
    const started = performance.now();
    const prefix = `[${i + 1}/${jobs.length}] ${job.input}`;
    try {
      const doc = /^https?:\/\//.test(job.input)
        ? await remote.index(job.input, { url: job.url, chunksThreshold, splitBytes })
        : await indexLocalFile(job.input, { url: job.url, chunksThreshold, splitBytes });
      const text = stringifyPython(doc as never);
      if (job.out) await writeFileAtomic(job.out, text);
      else process.stdout.write(text);
      const ms = Math.round(performance.now() - started);
      process.stderr.write(`${prefix} ok: ${describe(doc)}, ${ms} ms${job.out ? ` -> ${job.out}` : ""}\n`);
    } catch (e) {
      failures++;
      const reason = (e instanceof Error ? e.message : String(e)).split("\n")[0];
      process.stderr.write(`${prefix} FAILED: ${reason}\n`);
    }
  }
  await remote.close();
  if (jobs.length > 1) process.stderr.write(`${jobs.length - failures} indexed, ${failures} failed\n`);
  return failures > 0 ? 1 : 0;
}
