import type { PyJson } from "./pythonJson.ts";

/** How often a URL must occur in refs before it gets a template (spec §3.4). */
export const TEMPLATE_MIN_USES = 5;

/**
 * Replaces every URL used by at least 5 `[url, offset, length]` refs with
 * `{{uN}}` (names assigned in sorted URL order, smallest unused first) and
 * returns the templates (empty when none qualify). Mutates `refs`.
 *
 * `rangeRefs`, when given, must hold every array value of `refs`: only those
 * are visited (enumerating an object of 100,000s of keys is slow).
 */
export function applyTemplates(
  refs: Record<string, PyJson>,
  existing: Record<string, string> = {},
  rangeRefs?: readonly PyJson[][],
): Record<string, string> {
  const values: readonly PyJson[] = rangeRefs ?? Object.values(refs);
  const counts = new Map<string, number>();
  for (const v of values) {
    if (Array.isArray(v) && typeof v[0] === "string" && !v[0].includes("{{")) {
      counts.set(v[0], (counts.get(v[0]) ?? 0) + 1);
    }
  }
  const templates: Record<string, string> = { ...existing };
  const nameOf = new Map<string, string>(Object.entries(templates).map(([k, url]) => [url, k]));
  let next = 1;
  for (const url of [...counts.keys()].sort()) {
    if ((counts.get(url) ?? 0) < TEMPLATE_MIN_USES || nameOf.has(url)) continue;
    while (`u${next}` in templates) next++;
    templates[`u${next}`] = url;
    nameOf.set(url, `u${next}`);
  }
  if (nameOf.size === 0) return templates;
  for (const v of values) {
    if (Array.isArray(v) && typeof v[0] === "string") {
      const name = nameOf.get(v[0]);
      if (name && (counts.get(v[0]) ?? 0) >= TEMPLATE_MIN_USES) v[0] = `{{${name}}}`;
    }
  }
  return templates;
}
