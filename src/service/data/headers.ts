/** Response-header helpers of the data endpoints. */
import { stringifyPythonCompact, type PyJson } from "../../lindi/pythonJson.ts";

/** Compact, ASCII-only JSON of a metadata value (numcodecs configs, fill values), safe in a header. */
export function jsonHeader(v: unknown): string {
  if (v === undefined) return "null";
  return stringifyPythonCompact(v as PyJson, { allowNan: true });
}

/** A quoted filename for Content-Disposition (ASCII letters, digits, `._-` kept). */
export function safeFilename(name: string, ext: string): string {
  const base = name.replace(/[^A-Za-z0-9._-]+/g, "_").replace(/^[._]+/, "").slice(0, 100) || "data";
  return `${base}${ext}`;
}

export interface ByteRangeRequest {
  /** First byte (inclusive) and last byte (inclusive) to send. */
  start: number;
  end: number;
}

/**
 * A `Range` header against a resource of `total` bytes:
 *   undefined      → no (usable) Range: send everything (200). Multiple ranges and
 *                    syntax errors are ignored, as RFC 9110 allows.
 *   "unsatisfiable"→ 416
 *   {start, end}   → 206 with those bytes
 */
export function parseRangeHeader(value: string | undefined, total: number): ByteRangeRequest | "unsatisfiable" | undefined {
  if (value === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(value);
  if (!m) return undefined;
  const [, a, b] = m as unknown as [string, string, string];
  if (a === "" && b === "") return undefined;
  if (a === "") {
    // suffix: the last n bytes
    const n = Number(b);
    if (!Number.isSafeInteger(n)) return undefined;
    if (n === 0 || total === 0) return "unsatisfiable";
    return { start: Math.max(0, total - n), end: total - 1 };
  }
  const start = Number(a);
  const end = b === "" ? total - 1 : Math.min(Number(b), total - 1);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end)) return undefined;
  if (b !== "" && Number(b) < start) return undefined; // invalid: ignored
  if (start >= total) return "unsatisfiable";
  return { start, end };
}
