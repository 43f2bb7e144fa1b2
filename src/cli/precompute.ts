/**
 * `lindi precompute`: what a precompute job of the service does, without the
 * service — builds the indexes of a URL list or of a dandiset's NWB assets
 * with `createIndexBuilder` and writes them to a directory in the mirror
 * layout (index + info.json, atomically). Resumable: an item whose info.json
 * names the current generator and the source's current validator is skipped.
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { parseArgs } from "node:util";
import { createIndexBuilder } from "../index/builder.ts";
import { contentHash } from "../service/cache/entry.ts";
import { DEFAULT_BUILD_OPTIONS, normalizeUrl, sourceValidator } from "../service/key.ts";
import { DANDISET_RE, DEFAULT_DANDI_API, dandiItems, listDandisetNwbAssets, normalizeApiUrl, VERSION_RE } from "../jobs/dandi.ts";
import { GENERATOR } from "../jobs/generator.ts";
import { mirrorUpToDate, writeMirror } from "../jobs/mirror.ts";
import { mirrorDirOf, mirrorPathProblem, urlMirrorPath } from "../jobs/paths.ts";
import { UsageError } from "./args.ts";
import { formatBytes, Progress, type ProgressStream } from "./progress.ts";

export const PRECOMPUTE_USAGE = `  precompute (--urls FILE | --dandiset ID [--version V] [--api URL]) --out-dir DIR
        [--concurrency N]
      Builds many indexes into DIR in the mirror layout (each index with an
      info.json beside it): the URLs of FILE (one per line, optionally
      followed by the mirror path; # comments), or the NWB assets of a
      dandiset version (default draft) from the DANDI API (default
      ${DEFAULT_DANDI_API}) as dandi/dandisets/ID/assets/ASSET/nwb.lindi.json.
      Items already built by this generator version from the same source
      version are skipped, so an interrupted run resumes. A progress bar on
      a terminal, progress lines otherwise; exit status 1 if any item failed.`;

interface Item {
  url: string;
  path: string;
}

export interface PrecomputeIo {
  /** Progress and results (default process.stderr). */
  out?: ProgressStream;
  /** Stops the run (default: SIGINT/SIGTERM). */
  signal?: AbortSignal;
}

/** Lines `URL [PATH]`; blank lines and # comments ignored. */
export function parseUrlList(text: string, file = "urls"): Item[] {
  const items: Item[] = [];
  const urls = new Map<string, number>();
  const dirs = new Map<string, number>();
  for (const [i, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const where = `${file}:${i + 1}`;
    const [u, p, ...rest] = line.split(/\s+/);
    if (rest.length > 0) throw new UsageError(`${where}: expected "URL [PATH]", got ${rest.length + 2} fields`);
    let url: string;
    try {
      const parsed = new URL(u!);
      if (parsed.protocol !== "http:" && parsed.protocol !== "https:") throw new Error("not http(s)");
      url = normalizeUrl(parsed);
    } catch {
      throw new UsageError(`${where}: not an http(s) URL: ${u}`);
    }
    if (p !== undefined) {
      const why = mirrorPathProblem(p);
      if (why) throw new UsageError(`${where}: path ${why}`);
    }
    const mp = p ?? urlMirrorPath(url);
    if (urls.has(url)) throw new UsageError(`${where}: repeats line ${urls.get(url)}`);
    const dir = mirrorDirOf(mp);
    if (dirs.has(dir)) throw new UsageError(`${where}: path is in the same directory as line ${dirs.get(dir)}'s (one index per directory)`);
    urls.set(url, i + 1);
    dirs.set(dir, i + 1);
    items.push({ url, path: mp });
  }
  return items;
}

function reasonOf(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  const status = e && typeof e === "object" && typeof (e as { statusHint?: unknown }).statusHint === "number" ? (e as { statusHint: number }).statusHint : undefined;
  const first = msg.split("\n")[0]!;
  return status !== undefined && !first.includes(String(status)) ? `${first} (${status})` : first;
}

export async function runPrecomputeCommand(argv: string[], io: PrecomputeIo = {}): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      urls: { type: "string" },
      dandiset: { type: "string" },
      version: { type: "string" },
      api: { type: "string" },
      "out-dir": { type: "string" },
      concurrency: { type: "string" },
    },
  });
  if (positionals.length > 0) throw new UsageError(`precompute takes no positional arguments (got ${positionals.join(" ")})`);
  if ((values.urls === undefined) === (values.dandiset === undefined)) throw new UsageError("precompute needs --urls FILE or --dandiset ID (one of them)");
  if (values.urls !== undefined && (values.version !== undefined || values.api !== undefined)) throw new UsageError("--version and --api go with --dandiset");
  const outDir = values["out-dir"];
  if (!outDir) throw new UsageError("precompute needs --out-dir DIR");
  const concurrency = values.concurrency === undefined ? 2 : Number(values.concurrency);
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new UsageError(`--concurrency must be an integer from 1 to 64, got ${JSON.stringify(values.concurrency)}`);
  }
  const out: ProgressStream = io.out ?? process.stderr;
  const root = path.resolve(outDir);

  // stop cleanly on Ctrl-C: running builds are aborted, what is written stays (the next run resumes)
  const ctl = new AbortController();
  const onSignal = () => ctl.abort(new Error("interrupted"));
  if (!io.signal) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  } else if (io.signal.aborted) ctl.abort(io.signal.reason);
  else io.signal.addEventListener("abort", () => ctl.abort(io.signal!.reason), { once: true });
  const signal = ctl.signal;

  try {
    let items: Item[];
    if (values.urls !== undefined) {
      let text: string;
      try {
        text = await readFile(values.urls, "utf8");
      } catch (e) {
        throw new UsageError(`cannot read --urls ${values.urls}: ${(e as Error).message}`);
      }
      items = parseUrlList(text, values.urls);
    } else {
      const dandiset = values.dandiset!;
      const version = values.version ?? "draft";
      if (!DANDISET_RE.test(dandiset)) throw new UsageError(`--dandiset must be 6 digits, got ${JSON.stringify(dandiset)}`);
      if (!VERSION_RE.test(version)) throw new UsageError(`--version ${JSON.stringify(version)} is not a DANDI version`);
      let apiUrl: string;
      try {
        apiUrl = normalizeApiUrl(values.api ?? DEFAULT_DANDI_API);
      } catch (e) {
        throw new UsageError(`--api: ${(e as Error).message}`);
      }
      out.write(`listing dandiset ${dandiset} version ${version} from ${apiUrl}\n`);
      let lastNote = 0;
      try {
        const assets = await listDandisetNwbAssets({
          apiUrl,
          dandiset,
          version,
          signal,
          onPage: (p) => {
            if (Date.now() - lastNote > 2000 || (p.count !== null && p.assets >= p.count)) {
              lastNote = Date.now();
              out.write(`  page ${p.pages}: ${p.assets}${p.count !== null ? `/${p.count}` : ""} assets, ${p.nwb} NWB\n`);
            }
          },
        });
        items = dandiItems(apiUrl, dandiset, assets).map((a) => ({ url: a.url, path: a.path }));
      } catch (e) {
        if (signal.aborted) {
          out.write("interrupted while listing\n");
          return 130;
        }
        out.write(`lindi precompute: the asset listing failed: ${reasonOf(e)}\n`);
        return 1;
      }
    }

    out.write(`${items.length} items -> ${root} (concurrency ${concurrency}, ${GENERATOR.name} ${GENERATOR.version})\n`);
    const progress = new Progress(out, Progress.modeFor(out), items.length);
    const failures: Array<{ item: Item; reason: string }> = [];
    const builder = createIndexBuilder({ poolSize: concurrency });
    let next = 0;
    const worker = async () => {
      while (!signal.aborted) {
        const item = items[next++];
        if (!item) return;
        progress.itemStarted();
        const t0 = performance.now();
        try {
          const source = await builder.probe(item.url, signal);
          const want = { url: item.url, validator: sourceValidator(source), options: DEFAULT_BUILD_OPTIONS };
          if (await mirrorUpToDate(root, item.path, want)) {
            progress.itemFinished("skipped", item.path);
            continue;
          }
          const result = await builder.build(source, DEFAULT_BUILD_OPTIONS, signal);
          await writeMirror(root, item.path, result.json, {
            url: item.url,
            validator: want.validator,
            source: { size: source.size, etag: source.etag, lastModified: source.lastModified },
            options: DEFAULT_BUILD_OPTIONS,
            builtAt: new Date().toISOString(),
            buildMillis: result.millis,
            indexBytes: result.json.byteLength,
            indexHash: contentHash(result.json),
            bytesFetched: result.bytesFetched,
            requests: result.requests,
          });
          progress.itemFinished("built", item.path, {
            indexBytes: result.json.byteLength,
            bytesFetched: result.bytesFetched,
            millis: performance.now() - t0,
          });
        } catch (e) {
          if (signal.aborted) return;
          const reason = reasonOf(e);
          failures.push({ item, reason });
          progress.itemFinished("failed", item.path, { reason });
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
    } finally {
      progress.end();
      await builder.close();
    }
    const c = progress.counts;
    const summary =
      `${c.built} built, ${c.skipped} skipped, ${c.failed} failed of ${c.total} in ${progress.seconds.toFixed(1)} s ` +
      `(${formatBytes(c.bytesFetched)} fetched)`;
    if (signal.aborted) {
      out.write(`interrupted: ${summary}; run the same command again to resume\n`);
      return 130;
    }
    out.write(`done: ${summary}\n`);
    if (failures.length > 0) {
      out.write(`failed items (${failures.length}):\n`);
      for (const f of failures) out.write(`  ${f.item.path}  ${f.item.url}\n    ${f.reason}\n`);
      return 1;
    }
    return 0;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
  }
}
