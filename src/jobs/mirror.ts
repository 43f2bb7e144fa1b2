/**
 * Mirror outputs: `<root>/<path>` (the index, byte for byte what GET /lindi
 * serves) and `<root>/<dir of path>/info.json` (who made it from what).
 * Both are written atomically, the index first: info.json is the commit
 * marker, so an index whose info.json is missing or disagrees is rebuilt.
 */
import { readFile, stat } from "node:fs/promises";
import type { BuildOptions } from "../index/types.ts";
import { writeFileAtomic } from "./atomic.ts";
import { GENERATOR, isCurrentGenerator, type Generator } from "./generator.ts";
import { infoPathOf, resolveInside } from "./paths.ts";

export interface MirrorInfo {
  generator: Generator;
  /** The source URL (also the URL inside the index's refs). */
  url: string;
  /** The source validator (ETag, else Last-Modified + size, else size) the index was built from. */
  validator: string;
  source: { size: number; etag: string | null; lastModified: string | null };
  options: BuildOptions;
  /** ISO time the index was built. */
  builtAt: string;
  buildMillis: number;
  /** Size of the index file, bytes, and the first 32 hex chars of its sha256 (the base of GET /lindi's ETag). */
  indexBytes: number;
  indexHash: string;
  bytesFetched: number;
  requests: number;
}

export interface Wanted {
  url: string;
  validator: string;
  options: BuildOptions;
}

export function mirrorFile(root: string, rel: string): string {
  return resolveInside(root, rel);
}

export async function readMirrorInfo(root: string, rel: string): Promise<MirrorInfo | undefined> {
  try {
    const text = await readFile(resolveInside(root, infoPathOf(rel)), "utf8");
    const info = JSON.parse(text) as MirrorInfo;
    return info && typeof info === "object" ? info : undefined;
  } catch {
    return undefined;
  }
}

/** The info.json describes the wanted output, made by the current generator. */
export function infoMatches(info: MirrorInfo | undefined, want: Wanted): boolean {
  return (
    !!info &&
    isCurrentGenerator(info.generator) &&
    info.url === want.url &&
    info.validator === want.validator &&
    !!info.options &&
    info.options.chunksThreshold === want.options.chunksThreshold &&
    info.options.splitBytes === want.options.splitBytes
  );
}

/** The index at `rel` exists, is complete and matches `want` (so it need not be built again). */
export async function mirrorUpToDate(root: string, rel: string, want: Wanted): Promise<boolean> {
  const info = await readMirrorInfo(root, rel);
  if (!infoMatches(info, want)) return false;
  try {
    const st = await stat(resolveInside(root, rel));
    return st.isFile() && st.size === info!.indexBytes;
  } catch {
    return false;
  }
}

/** Writes the index, then its info.json (both atomically). */
export async function writeMirror(root: string, rel: string, json: Uint8Array, info: Omit<MirrorInfo, "generator">): Promise<MirrorInfo> {
  const full: MirrorInfo = { generator: { ...GENERATOR }, ...info };
  await writeFileAtomic(resolveInside(root, rel), json);
  await writeFileAtomic(resolveInside(root, infoPathOf(rel)), JSON.stringify(full, null, 2) + "\n");
  return full;
}
