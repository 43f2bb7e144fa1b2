/**
 * The mirror layout: where each index of a precompute job is written,
 * relative to the mirror directory, with `info.json` beside it.
 *
 *   dandi/dandisets/<dandiset>/assets/<asset_id>/nwb.lindi.json   (DANDI listings)
 *   urls/<sha256(url)[:32]>/index.lindi.json                       (URLs given without a path)
 *
 * Paths given by clients are checked here (relative, plain segments, no dot
 * segments or dotfiles, `.lindi.json` suffix), so nothing can be written or
 * served outside the mirror directory.
 */
import { createHash } from "node:crypto";
import path from "node:path";

export const INDEX_SUFFIX = ".lindi.json";
export const INFO_NAME = "info.json";
const SEGMENT_RE = /^[A-Za-z0-9_+=@,-][A-Za-z0-9._+=@,-]{0,254}$/;
const MAX_DEPTH = 32;
const MAX_LENGTH = 1024;

/** Why `seg` may not be a path segment (undefined: fine). */
export function segmentProblem(seg: string): string | undefined {
  if (seg === "") return "has an empty segment";
  if (seg.startsWith(".")) return `has a segment starting with "." (${JSON.stringify(seg.slice(0, 40))})`;
  if (!SEGMENT_RE.test(seg)) return `has a segment with characters other than A-Z a-z 0-9 . _ + = @ , - (${JSON.stringify(seg.slice(0, 40))})`;
  return undefined;
}

/** Why `p` is not a valid mirror path for an index (undefined: valid). */
export function mirrorPathProblem(p: string): string | undefined {
  if (p.length === 0) return "is empty";
  if (p.length > MAX_LENGTH) return `is longer than ${MAX_LENGTH} characters`;
  if (p.startsWith("/")) return "must be relative (no leading /)";
  const segs = p.split("/");
  if (segs.length > MAX_DEPTH) return `has more than ${MAX_DEPTH} segments`;
  for (const s of segs) {
    const why = segmentProblem(s);
    if (why) return why;
  }
  if (!p.endsWith(INDEX_SUFFIX) || segs[segs.length - 1] === INDEX_SUFFIX) return `must end with a name ending in ${INDEX_SUFFIX}`;
  return undefined;
}

/** The mirror path of a URL given without one. */
export function urlMirrorPath(normalizedUrl: string): string {
  const h = createHash("sha256").update(normalizedUrl).digest("hex").slice(0, 32);
  return `urls/${h}/index${INDEX_SUFFIX}`;
}

/** The mirror path of a DANDI asset. */
export function dandiMirrorPath(dandiset: string, assetId: string): string {
  return `dandi/dandisets/${dandiset}/assets/${assetId}/nwb${INDEX_SUFFIX}`;
}

/** The directory part of a mirror path (where info.json goes). */
export function mirrorDirOf(p: string): string {
  const i = p.lastIndexOf("/");
  return i < 0 ? "" : p.slice(0, i);
}

/** The relative path of the info.json beside an index. */
export function infoPathOf(p: string): string {
  const d = mirrorDirOf(p);
  return d ? `${d}/${INFO_NAME}` : INFO_NAME;
}

/**
 * Absolute file of a relative mirror path under `root`; throws when it would
 * leave the root (callers validate first; this is the last line of defence).
 */
export function resolveInside(root: string, rel: string): string {
  const base = path.resolve(root);
  const full = path.resolve(base, ...rel.split("/"));
  if (full !== base && !full.startsWith(base + path.sep)) throw new Error(`path ${JSON.stringify(rel)} leaves the mirror directory`);
  return full;
}
