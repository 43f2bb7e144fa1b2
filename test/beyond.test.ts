/**
 * Files the reference implementation cannot convert (golden beyond.txt) and
 * files HDF5 cannot open at all: each must end in a clear error or an index,
 * within bounded time, never a crash or a hang.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { LindiConversionError } from "../src/lindi/errors.ts";
import { indexLocalFile, NotHdf5Error } from "../src/lindi/indexHdf5.ts";
import { corpusFile, loadFeatures } from "./support/corpus.ts";
import { readGoldenBeyond } from "./support/golden.ts";

const TIMEOUT_MS = 60_000;

async function expectIndexOrClearError(rel: string): Promise<string> {
  try {
    const doc = await indexLocalFile(corpusFile(rel), { url: `corpus://${rel}` });
    assert.ok(Object.keys(doc.refs).length > 0, `${rel}: an index without refs`);
    return "indexed";
  } catch (e) {
    if (e instanceof LindiConversionError) {
      assert.match(e.objectPath, /^\//, `${rel}: the error must name the HDF5 object (${e.message})`);
      assert.ok(e.reason.length > 0, `${rel}: the error must give a reason`);
      return e.message;
    }
    if (e instanceof NotHdf5Error) return e.message;
    throw new Error(`${rel}: unexpected error type: ${e instanceof Error ? e.stack : String(e)}`);
  }
}

for (const { path: rel, reason } of readGoldenBeyond()) {
  test(`beyond the reference: ${rel}`, { timeout: TIMEOUT_MS }, async () => {
    const outcome = await expectIndexOrClearError(rel);
    assert.ok(outcome.length > 0, `${rel}: no outcome (reference: ${reason})`);
  });
}

test("files h5py could not open: a clear error (or an index where the damage is only a stale 'open for write' flag)", { timeout: TIMEOUT_MS * 4 }, async () => {
  const broken = loadFeatures().filter((f) => !f.open_ok);
  assert.ok(broken.length >= 16, "the corpus lists its unopenable files");
  const outcomes = await Promise.all(broken.map(async (f) => [f.path, await expectIndexOrClearError(f.path)] as const));
  const indexed = outcomes.filter(([, o]) => o === "indexed").map(([p]) => p);
  for (const p of indexed) assert.match(p, /h5clear|byteshuffle_compressed_datasets_latest/, `${p} should not be readable`);
  assert.ok(outcomes.length - indexed.length >= 10, "truncated, multi-file and CVE files stay errors");
});
