/**
 * Access to the golden LINDI outputs of the reference implementation
 * (../shared/golden beside the repo; see its README.md).
 *
 * A missing golden directory makes tests fail (never skip silently).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parsePythonJson, type PyJsonObject } from "../../src/lindi/pythonJson.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (test/support -> ../..). */
export const repoRoot = path.resolve(here, "../..");
/** Absolute path of the golden directory. */
export const goldenDir = path.resolve(repoRoot, "../shared/golden");
/** Absolute path of the golden files directory (`<path>.lindi.json`). */
export const goldenFilesDir = path.join(goldenDir, "files");

export const GOLDEN_MISSING = "../shared/golden is missing: shared/ must sit beside the repo";

/** The golden directory; throws (failing the test) when it is absent. */
export function requireGolden(): string {
  if (!existsSync(path.join(goldenDir, "public.txt"))) throw new Error(GOLDEN_MISSING);
  return goldenDir;
}

/** Corpus-relative paths listed in public.txt (files with a golden output). */
export function readGoldenList(): string[] {
  const text = readFileSync(path.join(requireGolden(), "public.txt"), "utf8");
  return text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0 && !l.startsWith("#"));
}

/** `beyond.txt`: corpus files the reference aborts on, with its reason. */
export function readGoldenBeyond(): { path: string; reason: string }[] {
  const file = path.join(requireGolden(), "beyond.txt");
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8")
    .split("\n")
    .filter((l) => l.trim().length > 0 && !l.startsWith("#"))
    .map((l) => {
      const tab = l.indexOf("\t");
      return tab < 0 ? { path: l.trim(), reason: "" } : { path: l.slice(0, tab), reason: l.slice(tab + 1) };
    });
}

/** Absolute path of the golden output for a corpus-relative path. */
export function goldenPath(rel: string): string {
  return path.join(requireGolden(), "files", rel + ".lindi.json");
}

/** Alias of {@link goldenPath}. */
export const goldenFile = goldenPath;

/** Text of the golden output for a corpus-relative path. */
export function readGoldenText(rel: string): string {
  return readFileSync(goldenPath(rel), "utf8");
}

/** The URL the reference wrote into refs for a corpus-relative path. */
export function goldenUrl(rel: string): string {
  return "corpus://" + rel;
}

/** One inline chunk (string value in refs) of a golden file, with its array's `.zarray`. */
export interface GoldenInlineChunk {
  file: string;
  key: string;
  value: string;
  zarray: PyJsonObject | undefined;
}

let inlineCache: GoldenInlineChunk[] | undefined;

/** All inline chunks of all golden files (loaded once per process). */
export function goldenInlineChunks(): GoldenInlineChunk[] {
  if (inlineCache) return inlineCache;
  const out: GoldenInlineChunk[] = [];
  for (const file of readGoldenList()) {
    const doc = parsePythonJson(readFileSync(goldenPath(file), "utf8")) as PyJsonObject;
    const refs = doc["refs"] as PyJsonObject;
    for (const [key, value] of Object.entries(refs)) {
      if (typeof value !== "string") continue;
      const slash = key.lastIndexOf("/");
      const z = refs[slash < 0 ? ".zarray" : key.slice(0, slash) + "/.zarray"];
      out.push({ file, key, value, zarray: z && typeof z === "object" && !Array.isArray(z) ? (z as PyJsonObject) : undefined });
    }
  }
  inlineCache = out;
  return out;
}
