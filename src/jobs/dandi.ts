/**
 * The DANDI REST API's asset listing of a dandiset version, expanded into
 * precompute items: `GET {api}/dandisets/{id}/versions/{version}/assets/`
 * (paginated: `{count, next, previous, results: [{asset_id, path, size}]}`,
 * following `next`), NWB files only (path ending `.nwb`), each becoming
 * `{api}/assets/{asset_id}/download/` with mirror path
 * `dandi/dandisets/{id}/assets/{asset_id}/nwb.lindi.json`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { request, type Dispatcher } from "undici";
import { dandiMirrorPath, segmentProblem } from "./paths.ts";

export const DEFAULT_DANDI_API = "https://api.dandiarchive.org/api";
export const DANDISET_RE = /^\d{6}$/;
export const VERSION_RE = /^(?!\.)[A-Za-z0-9._-]{1,64}$/;

export interface DandiAsset {
  asset_id: string;
  path: string;
  size: number;
}

export interface ListingProgress {
  /** Pages fetched so far. */
  pages: number;
  /** Assets seen so far (any kind) and the total the API announced. */
  assets: number;
  count: number | null;
  /** NWB assets kept so far. */
  nwb: number;
}

/** A listing failure; `statusHint` maps it to an HTTP status (404 unknown dandiset/version, 502 anything else). */
export class ListingError extends Error {
  constructor(
    message: string,
    readonly statusHint: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ListingError";
  }
}

export interface ListOptions {
  apiUrl: string;
  dandiset: string;
  version: string;
  /** `page_size` asked for (the API may answer with fewer). Default 100. */
  pageSize?: number;
  signal?: AbortSignal;
  /** undici dispatcher (the service passes one whose DNS lookup applies the URL policy). */
  dispatcher?: Dispatcher;
  /** Called with every page URL before it is fetched (the service's URL policy); throw to refuse. */
  checkUrl?: (url: URL) => Promise<void>;
  onPage?: (p: ListingProgress) => void;
  /** Per request, ms. Default 30 000. */
  timeoutMs?: number;
  /** Attempts per page on network errors, 429 and 5xx. Default 4. */
  attempts?: number;
}

/** `https://host/api/` → `https://host/api` (no trailing slash, query or fragment); throws ListingError(400). */
export function normalizeApiUrl(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ListingError(`apiUrl is not a valid absolute URL: ${JSON.stringify(raw.slice(0, 200))}`, 400);
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw new ListingError(`apiUrl must be http(s), not ${u.protocol}`, 400);
  u.hash = "";
  u.search = "";
  u.pathname = u.pathname.replace(/\/+$/, "");
  return u.href.replace(/\/+$/, "");
}

export function assetDownloadUrl(apiUrl: string, assetId: string): string {
  return `${apiUrl}/assets/${encodeURIComponent(assetId)}/download/`;
}

export function listingUrl(apiUrl: string, dandiset: string, version: string, pageSize: number): string {
  return `${apiUrl}/dandisets/${dandiset}/versions/${encodeURIComponent(version)}/assets/?page_size=${pageSize}`;
}

/** Items (URL + mirror path) of NWB assets. */
export function dandiItems(apiUrl: string, dandiset: string, assets: readonly DandiAsset[]): Array<{ url: string; path: string; size: number; assetPath: string }> {
  return assets.map((a) => ({ url: assetDownloadUrl(apiUrl, a.asset_id), path: dandiMirrorPath(dandiset, a.asset_id), size: a.size, assetPath: a.path }));
}

function isNwb(p: string): boolean {
  return p.toLowerCase().endsWith(".nwb");
}

async function fetchPage(url: string, o: ListOptions): Promise<unknown> {
  const attempts = Math.max(1, o.attempts ?? 4);
  let lastErr: unknown;
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.min(10_000, 500 * 2 ** (i - 1)), undefined, o.signal ? { signal: o.signal } : undefined);
    if (o.signal?.aborted) throw o.signal.reason;
    let status: number;
    let text: string;
    try {
      const res = await request(url, {
        method: "GET",
        headers: { accept: "application/json", "user-agent": "lindi-service precompute" },
        dispatcher: o.dispatcher,
        signal: o.signal,
        headersTimeout: o.timeoutMs ?? 30_000,
        bodyTimeout: o.timeoutMs ?? 30_000,
      });
      status = res.statusCode;
      text = await res.body.text();
    } catch (e) {
      if (o.signal?.aborted) throw o.signal.reason;
      const refused = (e as { statusHint?: unknown }).statusHint === 403;
      lastErr = new ListingError(`the asset listing could not be fetched (${url}): ${(e as Error).message}`, refused ? 403 : 502, { cause: e });
      if (refused) throw lastErr;
      continue;
    }
    if (status === 200) {
      try {
        return JSON.parse(text) as unknown;
      } catch (e) {
        throw new ListingError(`the asset listing at ${url} is not JSON`, 502, { cause: e });
      }
    }
    if (status === 404) throw new ListingError(`dandiset ${o.dandiset} version ${o.version} not found (404 from ${url})`, 404);
    lastErr = new ListingError(`the asset listing answered ${status} (${url})`, 502);
    if (status !== 429 && status < 500) throw lastErr;
  }
  throw lastErr;
}

/** Every NWB asset of the version, following `next` links (same origin only). */
export async function listDandisetNwbAssets(o: ListOptions): Promise<DandiAsset[]> {
  if (!DANDISET_RE.test(o.dandiset)) throw new ListingError(`dandiset must be 6 digits, got ${JSON.stringify(o.dandiset)}`, 400);
  if (!VERSION_RE.test(o.version)) throw new ListingError(`version ${JSON.stringify(o.version)} is not a DANDI version`, 400);
  const api = new URL(o.apiUrl);
  let next: string | null = listingUrl(o.apiUrl, o.dandiset, o.version, o.pageSize ?? 100);
  const seen = new Set<string>();
  const out: DandiAsset[] = [];
  const ids = new Set<string>();
  const progress: ListingProgress = { pages: 0, assets: 0, count: null, nwb: 0 };
  while (next !== null) {
    const u: URL = new URL(next);
    if (u.origin !== api.origin) throw new ListingError(`the asset listing's next link leaves ${api.origin}: ${u.origin}`, 502);
    if (seen.has(u.href)) throw new ListingError(`the asset listing repeats page ${u.href}`, 502);
    if (seen.size >= 1_000_000) throw new ListingError("the asset listing has too many pages", 502);
    seen.add(u.href);
    await o.checkUrl?.(u);
    const page = (await fetchPage(u.href, o)) as { count?: unknown; next?: unknown; results?: unknown };
    if (!page || typeof page !== "object" || !Array.isArray(page.results)) {
      throw new ListingError(`the asset listing at ${u.href} has no results array`, 502);
    }
    if (typeof page.count === "number") progress.count = page.count;
    for (const r of page.results as Array<Record<string, unknown>>) {
      progress.assets++;
      const id = r?.asset_id;
      const p = r?.path;
      if (typeof id !== "string" || typeof p !== "string") throw new ListingError(`an asset of the listing at ${u.href} has no asset_id or path`, 502);
      if (!isNwb(p)) continue;
      const bad = segmentProblem(id);
      if (bad) throw new ListingError(`asset id ${JSON.stringify(id.slice(0, 60))} ${bad}`, 502);
      if (ids.has(id)) continue;
      ids.add(id);
      out.push({ asset_id: id, path: p, size: typeof r.size === "number" ? r.size : 0 });
      progress.nwb++;
    }
    progress.pages++;
    o.onPage?.({ ...progress });
    if (page.next !== null && page.next !== undefined && typeof page.next !== "string") {
      throw new ListingError(`the asset listing at ${u.href} has a malformed next link`, 502);
    }
    next = (page.next as string | null | undefined) ?? null;
    if (next !== null) next = new URL(next, u).href;
  }
  return out;
}
