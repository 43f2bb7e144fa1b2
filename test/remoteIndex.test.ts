/**
 * Conformance over HTTP: corpus files are served by a loopback range origin
 * and indexed by URL through the worker pool (createIndexBuilder with its
 * defaults, prefetching on).
 *
 * - every file must give output byte-identical to indexing the same local
 *   file with the same URL (indexLocalFile), or, where local indexing fails,
 *   fail the same way;
 * - files with a golden output (public.txt) must also equal the golden after
 *   mapping the origin URL to `corpus://`.
 *
 * The rest of the corpus (files without a golden) is checked for identity too.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, test } from "node:test";
import { createIndexBuilder, type RemoteIndexBuilder } from "../src/index/builder.ts";
import { LindiConversionError } from "../src/lindi/errors.ts";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { parsePythonJson, stringifyPython, type PyJson } from "../src/lindi/pythonJson.ts";
import { corpusDir, loadFeatures } from "./support/corpus.ts";
import { goldenFile, readGoldenList } from "./support/golden.ts";
import { compareLindi } from "./support/lindiCompare.ts";
import { startRangeOrigin, type RangeOrigin } from "./support/rangeOrigin.ts";

interface Outcome {
  local: string | Error;
  remote: string | Error;
}

const BUILD_OPTS = { chunksThreshold: 1000, splitBytes: 20_000_000 };

async function indexBoth(builder: RemoteIndexBuilder, origin: RangeOrigin, rel: string): Promise<Outcome> {
  const url = origin.url(rel);
  let local: string | Error;
  let remote: string | Error;
  try {
    local = stringifyPython((await indexLocalFile(path.join(corpusDir, rel), { url })) as never);
  } catch (e) {
    local = e instanceof Error ? e : new Error(String(e));
  }
  try {
    const info = await builder.probe(url);
    const r = await builder.build(info, BUILD_OPTS);
    remote = new TextDecoder().decode(r.json);
  } catch (e) {
    remote = e instanceof Error ? e : new Error(String(e));
  }
  return { local, remote };
}

/** Runs `fn` over `items`, `limit` at a time; one promise per item. */
function runLimited<T>(items: string[], limit: number, fn: (item: string) => Promise<T>): Map<string, Promise<T>> {
  const out = new Map<string, Promise<T>>();
  const resolvers = new Map<string, (v: T) => void>();
  for (const it of items) out.set(it, new Promise<T>((resolve) => resolvers.set(it, resolve)));
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const it = items[next++]!;
      resolvers.get(it)!(await fn(it));
    }
  };
  for (let i = 0; i < limit; i++) void worker();
  return out;
}

/** A missing external raw data file reads as ENOENT locally and as a 404 remotely: the same failure. */
function sameFailure(local: Error, remote: Error): boolean {
  if (local.name !== remote.name) return false;
  if (local.message === remote.message) return true;
  return (
    local instanceof LindiConversionError &&
    remote instanceof LindiConversionError &&
    local.objectPath === remote.objectPath &&
    /own decoding failed too: ENOENT/.test(local.message) &&
    /own decoding failed too: source not found \(404\)/.test(remote.message)
  );
}

function assertSameOutcome(rel: string, o: Outcome): void {
  if (typeof o.local === "string") {
    if (o.remote instanceof Error) {
      assert.fail(`${rel}: local indexing succeeds but remote fails: ${o.remote.name}: ${o.remote.message}\n${o.remote.stack ?? ""}`);
    }
    assert.ok(o.remote === o.local, `${rel}: remote output is not byte-identical to local output`);
  } else {
    assert.ok(o.remote instanceof Error, `${rel}: local indexing fails (${o.local.name}: ${o.local.message}) but remote succeeds`);
    assert.ok(
      sameFailure(o.local, o.remote),
      `${rel}: fails differently\n  local:  ${o.local.name}: ${o.local.message}\n  remote: ${o.remote.name}: ${o.remote.message}`,
    );
  }
}

const origin = await startRangeOrigin({ root: corpusDir });
const builder = createIndexBuilder({ poolSize: 2 });
after(async () => {
  await builder.close();
  await origin.close();
});

const golden = readGoldenList();
const goldenSet = new Set(golden);
const rest = loadFeatures()
  .map((f) => f.path)
  .filter((p) => !goldenSet.has(p));
const outcomes = runLimited([...golden, ...rest], 3, (rel) => indexBoth(builder, origin, rel));
const summary = { identical: 0, failingIdentically: 0 };
after(() => {
  process.stdout.write(
    `remote conformance: ${summary.identical} identical, ${summary.failingIdentically} failing identically, of ${golden.length + rest.length}\n`,
  );
});

for (const rel of golden) {
  test(`remote ${rel}`, async () => {
    const o = await outcomes.get(rel)!;
    assertSameOutcome(rel, o);
    if (typeof o.local !== "string") {
      summary.failingIdentically++;
      return;
    }
    summary.identical++;
    const expected = parsePythonJson(readFileSync(goldenFile(rel), "utf8"));
    // the origin URL → corpus://, wherever it is written (refs, templates, external array links)
    const url = origin.url(rel);
    const mapped = o.local.split(JSON.stringify(url)).join(JSON.stringify(`corpus://${rel}`));
    const diffs = await compareLindi(parsePythonJson(mapped) as PyJson, expected, {
      mapUrl: (u) => (u === url ? `corpus://${rel}` : u),
    });
    assert.deepEqual(diffs, [], `${rel} differs from the golden:\n${diffs.slice(0, 20).join("\n")}`);
  });
}

test(`remote = local on the ${rest.length} corpus files without a golden`, async () => {
  const problems: string[] = [];
  for (const rel of rest) {
    const o = await outcomes.get(rel)!;
    try {
      assertSameOutcome(rel, o);
      if (typeof o.local === "string") summary.identical++;
      else summary.failingIdentically++;
    } catch (e) {
      problems.push(e instanceof Error ? e.message : String(e));
    }
  }
  assert.deepEqual(problems, [], problems.slice(0, 10).join("\n"));
});
