/**
 * The command line as an archive mirror uses it: many inputs in one process,
 * the mirror layout under --out-dir, URLs from --base-url, one progress line
 * per file, non-zero exit with a reason per failed input.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { corpusDir, corpusFile, repoRoot } from "./support/corpus.ts";
import { goldenFile } from "./support/golden.ts";

function runCli(args: string[]) {
  return spawnSync(process.execPath, ["--import", "tsx", join(repoRoot, "src/cli/main.ts"), ...args], {
    cwd: repoRoot,
    encoding: "utf8",
    timeout: 120_000,
  });
}

test("index --out-dir --root --base-url reproduces the golden files byte for byte", () => {
  const out = mkdtempSync(join(tmpdir(), "lindi-cli-"));
  try {
    const rels = ["generated-nwb/ecephys.nwb", "synthetic/chunk_index_latest.h5", "pynwb/_history/1db4236956/tests/back_compat/1.3.3_imageseries_no_data.nwb"];
    const r = runCli(["index", ...rels.map(corpusFile), "--root", corpusDir, "--base-url", "corpus://", "--out-dir", out]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr.match(/ ok: /g)?.length, rels.length, `one progress line per file:\n${r.stderr}`);
    for (const rel of rels) {
      assert.equal(readFileSync(join(out, `${rel}.lindi.json`), "utf8"), readFileSync(goldenFile(rel), "utf8"), rel);
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("a failing input is reported with its reason and makes the exit status non-zero", () => {
  const out = mkdtempSync(join(tmpdir(), "lindi-cli-"));
  try {
    const good = corpusFile("generated-nwb/ecephys.nwb");
    const bad = corpusFile("hdf5-1.10.8/test/family_v16_00000.h5");
    const r = runCli(["index", good, bad, "--root", corpusDir, "--base-url", "corpus://", "--out-dir", out]);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /family_v16_00000\.h5 FAILED: not a readable HDF5 file/);
    assert.match(r.stderr, /1 indexed, 1 failed/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("usage errors exit 2 with a message", () => {
  const r = runCli(["index", corpusFile("generated-nwb/ecephys.nwb"), corpusFile("synthetic/links.h5")]);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /several inputs need --out-dir/);
  const bad = runCli(["index", corpusFile("generated-nwb/ecephys.nwb"), "--split-bytes", "lots"]);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--split-bytes must be a non-negative integer or "none"/);
});
