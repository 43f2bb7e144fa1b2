/** Content-coding negotiation and conditional requests for stored representations. */
import type { Encoding } from "./cache/entry.ts";

/** Picks br, gzip or identity from an Accept-Encoding header (q-values honoured; br preferred on ties). */
export function chooseEncoding(header: string | undefined): Encoding {
  if (!header) return "identity";
  const q = new Map<string, number>();
  for (const part of header.split(",")) {
    const [token, ...params] = part.trim().split(";");
    const name = token?.trim().toLowerCase();
    if (!name) continue;
    let weight = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) weight = Number(m[1]);
    }
    if (Number.isFinite(weight)) q.set(name, weight);
  }
  const weightOf = (n: string) => q.get(n) ?? q.get("*") ?? 0;
  const br = weightOf("br");
  const gz = Math.max(weightOf("gzip"), q.get("x-gzip") ?? 0);
  if (br > 0 && br >= gz) return "br";
  if (gz > 0) return "gzip";
  return "identity";
}

/**
 * If-None-Match against an entry: true when any listed tag names this
 * content, whatever its coding (weak comparison, as RFC 9110 asks for GET).
 */
export function matchesIfNoneMatch(header: string | undefined, hash: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  for (const raw of header.split(",")) {
    const tag = raw.trim().replace(/^W\//i, "");
    const m = /^"([^"]*)"$/.exec(tag);
    if (!m) continue;
    const opaque = m[1]!.replace(/-(gzip|br)$/, "");
    if (opaque === hash) return true;
  }
  return false;
}
