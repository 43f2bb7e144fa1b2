/**
 * The generator that mirror outputs (`info.json`) and precompute jobs record:
 * this package's name and version (read from package.json at startup) and
 * the index format version that is part of every cache key. An output made
 * by another generator version is rebuilt, never skipped.
 */
import { readFileSync } from "node:fs";
import { INDEX_FORMAT_VERSION } from "../service/key.ts";

const pkg = JSON.parse(readFileSync(new URL("../../package.json", import.meta.url), "utf8")) as { name?: unknown; version?: unknown };

export interface Generator {
  name: string;
  version: string;
  /** `INDEX_FORMAT_VERSION` of src/service/key.ts. */
  indexFormat: number;
}

export const GENERATOR: Readonly<Generator> = Object.freeze({
  name: typeof pkg.name === "string" ? pkg.name : "lindi-service",
  version: typeof pkg.version === "string" ? pkg.version : "0.0.0",
  indexFormat: INDEX_FORMAT_VERSION,
});

/** Whether a recorded generator is the current one. */
export function isCurrentGenerator(g: unknown): boolean {
  if (!g || typeof g !== "object") return false;
  const r = g as Record<string, unknown>;
  return r.name === GENERATOR.name && r.version === GENERATOR.version && r.indexFormat === GENERATOR.indexFormat;
}
