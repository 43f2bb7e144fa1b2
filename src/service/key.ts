/**
 * The cache key of an index: normalized source URL + build options + the
 * source's validator (ETag, else Last-Modified + size, else size alone).
 * A changed source gets a new key (so it is rebuilt); an unchanged one keeps
 * its key (so it never is).
 */
import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { BuildOptions, SourceInfo } from "../index/types.ts";

/** Bump when the generator's output changes for the same input: old entries stop matching. */
export const INDEX_FORMAT_VERSION = 1;

export const DEFAULT_BUILD_OPTIONS: BuildOptions = { chunksThreshold: 1000, splitBytes: 20_000_000 };

/** WHATWG normalization (scheme/host case, default port, dot segments, percent-encoding), fragment dropped. */
export function normalizeUrl(u: URL): string {
  const c = new URL(u.href);
  c.hash = "";
  return c.href;
}

/** Query value (integer or "none") → option value; undefined → the default. */
export function optionValue(v: number | "none" | undefined, fallback: number | null): number | null {
  if (v === undefined) return fallback;
  return v === "none" ? null : v;
}

export function buildOptions(q: { chunksThreshold?: number | "none"; splitBytes?: number | "none" }): BuildOptions {
  return {
    chunksThreshold: optionValue(q.chunksThreshold, DEFAULT_BUILD_OPTIONS.chunksThreshold),
    splitBytes: optionValue(q.splitBytes, DEFAULT_BUILD_OPTIONS.splitBytes),
  };
}

/** The validator string of a probed source. */
export function sourceValidator(s: SourceInfo): string {
  if (s.etag) return `etag:${s.etag.trim().replace(/^W\//i, "")}`;
  if (s.lastModified) return `lm:${s.lastModified}|size:${s.size}`;
  return `size:${s.size}`;
}

/** Keys computed lately: every data request resolves its source's key, mostly the same few. */
const recentKeys = new LRUCache<string, string>({ max: 4096 });

/** 64 hex chars; also the build id. */
export function cacheKey(normalizedUrl: string, opts: BuildOptions, validator: string): string {
  const material = JSON.stringify([
    INDEX_FORMAT_VERSION,
    normalizedUrl,
    opts.chunksThreshold,
    opts.splitBytes,
    validator,
  ]);
  let key = recentKeys.get(material);
  if (key === undefined) {
    key = createHash("sha256").update(material).digest("hex");
    recentKeys.set(material, key);
  }
  return key;
}

export function isCacheKey(s: string): boolean {
  return /^[0-9a-f]{64}$/.test(s);
}

/** The query string that asks for this index again (for links in 202 answers). */
export function lindiQuery(url: string, opts: BuildOptions): string {
  const p = new URLSearchParams({ url });
  if (opts.chunksThreshold !== DEFAULT_BUILD_OPTIONS.chunksThreshold) {
    p.set("chunksThreshold", opts.chunksThreshold === null ? "none" : String(opts.chunksThreshold));
  }
  if (opts.splitBytes !== DEFAULT_BUILD_OPTIONS.splitBytes) {
    p.set("splitBytes", opts.splitBytes === null ? "none" : String(opts.splitBytes));
  }
  return p.toString();
}
