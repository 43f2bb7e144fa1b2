/**
 * Conformance with the reference implementation: every corpus file that has
 * a golden LINDI JSON in ../shared/golden is indexed and compared as the
 * golden README defines (same keys, metadata equal, ranges equal after
 * template expansion, inline chunks equal after decoding) and, beyond that,
 * byte-identical to the reference file.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, test } from "node:test";
import { indexLocalFile } from "../src/lindi/indexHdf5.ts";
import { parsePythonJson, stringifyPython, type PyJson } from "../src/lindi/pythonJson.ts";
import { corpusFile } from "./support/corpus.ts";
import { goldenFile, readGoldenList } from "./support/golden.ts";
import { compareLindi } from "./support/lindiCompare.ts";

const results = { passed: 0, failed: 0 };

after(() => {
  process.stdout.write(`conformance: ${results.passed} passed, ${results.failed} failed\n`);
});

async function differences(rel: string): Promise<string[]> {
  const text = readFileSync(goldenFile(rel), "utf8");
  let actual: PyJson;
  try {
    actual = (await indexLocalFile(corpusFile(rel), { url: `corpus://${rel}` })) as unknown as PyJson;
  } catch (e) {
    return [`indexing failed: ${e instanceof Error ? e.message : String(e)}`];
  }
  const diffs = await compareLindi(actual, parsePythonJson(text));
  // The stretch goal, held once reached: the serialized file is the reference's, byte for byte.
  if (diffs.length === 0 && stringifyPython(actual) !== text) diffs.push("equal as JSON but not byte-identical to the reference file");
  return diffs;
}

for (const rel of readGoldenList()) {
  test(`golden ${rel}`, async () => {
    const diffs = await differences(rel);
    if (diffs.length > 0) results.failed++;
    else results.passed++;
    assert.deepEqual(diffs, [], `${rel} differs from the reference:\n${diffs.slice(0, 20).join("\n")}`);
  });
}
