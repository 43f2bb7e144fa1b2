/** Small parsers for the response headers a range reader needs. */
import { OriginProtocolError } from "../httpErrors.ts";

export type HeaderValue = string | string[] | undefined;

/** First value of a header (undici gives arrays for repeated headers). */
export function header(headers: Record<string, HeaderValue>, name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  if (Array.isArray(v)) return v[0];
  return v;
}

/** The HTTP statuses that redirect (with a Location). */
export const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/**
 * Where a redirect answer points, resolved against the answer's URL; null
 * when the answer is not a redirect with a Location. A Location that is not
 * a URL is an OriginProtocolError.
 */
export function redirectTarget(res: { statusCode: number; headers: Record<string, HeaderValue>; url: URL }): URL | null {
  const loc = header(res.headers, "location");
  if (!REDIRECT_STATUSES.has(res.statusCode) || !loc) return null;
  try {
    return new URL(loc, res.url);
  } catch (e) {
    throw new OriginProtocolError("bad redirect Location", res.url, { cause: e });
  }
}

/** A non-negative integer header such as Content-Length; undefined when absent or malformed. */
export function intHeader(headers: Record<string, HeaderValue>, name: string): number | undefined {
  const v = header(headers, name);
  if (v === undefined || !/^\s*\d+\s*$/.test(v)) return undefined;
  const n = Number(v.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface ContentRange {
  /** First byte (inclusive); undefined for `bytes *\/total` (416 answers). */
  start?: number;
  /** Last byte (inclusive). */
  end?: number;
  /** Full size; undefined when the origin sent `*`. */
  total?: number;
}

/** Parses `bytes a-b/total`, `bytes a-b/*` and `bytes *\/total`; undefined when malformed. */
export function parseContentRange(value: string | undefined): ContentRange | undefined {
  if (!value) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\s*\/\s*(\d+|\*)\s*$/i.exec(value);
  if (!m) return undefined;
  const total = m[3] === "*" ? undefined : Number(m[3]);
  if (m[1] === undefined) return total === undefined ? undefined : { total };
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start) return undefined;
  if (total !== undefined && (!Number.isSafeInteger(total) || end >= total)) return undefined;
  return { start, end, ...(total === undefined ? {} : { total }) };
}

/** Retry-After (seconds or an HTTP date) in ms; undefined when absent or unparsable. */
export function retryAfterMs(headers: Record<string, HeaderValue>, now = Date.now()): number | undefined {
  const v = header(headers, "retry-after");
  if (!v) return undefined;
  if (/^\s*\d+\s*$/.test(v)) return Number(v.trim()) * 1000;
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

/** True for a weak validator (`W/"..."`). */
export function isWeakEtag(etag: string): boolean {
  return /^W\//i.test(etag.trim());
}
