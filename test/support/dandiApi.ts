/**
 * A loopback stand-in for the DANDI REST API (127.0.0.1, ephemeral port):
 *
 *   GET  /api/dandisets/{id}/versions/{version}/assets/?page=&page_size=
 *        → {count, next, previous, results: [{asset_id, path, size, created, modified}]}
 *          (`next`/`previous` absolute links, like the real API; page_size capped by `maxPageSize`)
 *   GET|HEAD /api/assets/{asset_id}/download/ → 302 to the asset's file URL (like DANDI's redirect to S3)
 *
 *   const api = await startDandiApi({ dandisets: { "000123": { draft: assets } }, maxPageSize: 7 });
 *   api.apiUrl;                 // http://127.0.0.1:<port>/api
 *   api.downloads.get(assetId)  // download requests per asset
 *   api.listingRequests
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { createHash } from "node:crypto";
import { statSync } from "node:fs";
import path from "node:path";

export interface StandInAsset {
  asset_id: string;
  path: string;
  size: number;
  /** Where the download endpoint redirects to; null → 404 (asset without a blob). */
  target: string | null;
}

export interface DandiApiOptions {
  /** dandiset id → version → assets (in listing order). */
  dandisets: Record<string, Record<string, StandInAsset[]>>;
  /** Largest page served, whatever page_size asks. Default 10. */
  maxPageSize?: number;
  /** Added before answering listing pages, ms. */
  listingLatencyMs?: number;
  /** Answer 500 to the first N listing requests. */
  listingErrors?: number;
}

export interface DandiApi {
  /** `http://127.0.0.1:<port>/api` */
  readonly apiUrl: string;
  readonly baseUrl: string;
  /** Download requests (GET + HEAD) per asset id. */
  readonly downloads: Map<string, number>;
  readonly listingRequests: number;
  /** Add or replace a dandiset version. */
  setAssets(dandiset: string, version: string, assets: StandInAsset[]): void;
  resetStats(): void;
  close(): Promise<void>;
}

/** A deterministic UUID-shaped asset id. */
export function assetId(seed: string): string {
  const h = createHash("sha256").update(seed).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** Small NWB files of the corpus that index quickly. */
export const CORPUS_NWB = [
  "pynwb/tests/back_compat/1.0.2_nwbfile.nwb",
  "pynwb/tests/back_compat/1.0.2_str_experimenter.nwb",
  "pynwb/tests/back_compat/1.0.2_str_pub.nwb",
  "matnwb/_history/e7401f8e7d/tutorials/ecephys_tutorial.nwb",
  "pynwb/tests/back_compat/1.1.2_nwbfile.nwb",
  "pynwb/tests/back_compat/2.1.0_nwbfile_with_extension.nwb",
  "pynwb/tests/back_compat/1.5.1_timeseries_no_data.nwb",
  "pynwb/tests/back_compat/2.2.0_subject_no_age__reference.nwb",
];

/**
 * `count` NWB assets reusing the corpus files under distinct asset ids
 * (`seed` makes the ids), redirecting to `fileUrl(rel)` of an origin serving `root`.
 */
export function corpusAssets(root: string, fileUrl: (rel: string) => string, seed: string, count: number): StandInAsset[] {
  return Array.from({ length: count }, (_, i) => {
    const rel = CORPUS_NWB[i % CORPUS_NWB.length]!;
    return {
      asset_id: assetId(`${seed}/${i}`),
      path: `sub-${String(i).padStart(3, "0")}/sub-${String(i).padStart(3, "0")}_${path.basename(rel)}`,
      size: statSync(path.join(root, rel)).size,
      target: fileUrl(rel),
    };
  });
}

export async function startDandiApi(opts: DandiApiOptions): Promise<DandiApi> {
  const dandisets = structuredClone(opts.dandisets);
  const maxPage = opts.maxPageSize ?? 10;
  const byId = new Map<string, StandInAsset>();
  const index = () => {
    byId.clear();
    for (const versions of Object.values(dandisets)) for (const list of Object.values(versions)) for (const a of list) byId.set(a.asset_id, a);
  };
  index();
  const downloads = new Map<string, number>();
  let listingRequests = 0;
  let listingErrors = opts.listingErrors ?? 0;
  const sockets = new Set<Socket>();
  let base = "";

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) }).end(text);
  };

  const server = http.createServer((req, res) => {
    void (async () => {
      const u = new URL(req.url ?? "/", "http://127.0.0.1");
      const list = /^\/api\/dandisets\/([^/]+)\/versions\/([^/]+)\/assets\/$/.exec(u.pathname);
      if (list && req.method === "GET") {
        listingRequests++;
        if (opts.listingLatencyMs) await new Promise((r) => setTimeout(r, opts.listingLatencyMs));
        if (listingErrors > 0) {
          listingErrors--;
          json(res, 500, { detail: "injected" });
          return;
        }
        const assets = dandisets[decodeURIComponent(list[1]!)]?.[decodeURIComponent(list[2]!)];
        if (!assets) {
          json(res, 404, { detail: "Not found." });
          return;
        }
        const page = Math.max(1, Number(u.searchParams.get("page") ?? 1) || 1);
        const size = Math.min(maxPage, Math.max(1, Number(u.searchParams.get("page_size") ?? 100) || 100));
        const start = (page - 1) * size;
        if (start > 0 && start >= assets.length) {
          json(res, 404, { detail: "Invalid page." });
          return;
        }
        const link = (p: number) => {
          const l = new URL(u.pathname, base);
          l.searchParams.set("page", String(p));
          l.searchParams.set("page_size", String(size));
          return l.href;
        };
        json(res, 200, {
          count: assets.length,
          next: start + size < assets.length ? link(page + 1) : null,
          previous: page > 1 ? link(page - 1) : null,
          results: assets.slice(start, start + size).map((a) => ({
            asset_id: a.asset_id,
            path: a.path,
            size: a.size,
            created: "2024-01-01T00:00:00.000000Z",
            modified: "2024-01-01T00:00:00.000000Z",
          })),
        });
        return;
      }
      const dl = /^\/api\/assets\/([^/]+)\/download\/$/.exec(u.pathname);
      if (dl && (req.method === "GET" || req.method === "HEAD")) {
        const id = decodeURIComponent(dl[1]!);
        downloads.set(id, (downloads.get(id) ?? 0) + 1);
        const a = byId.get(id);
        if (!a || a.target === null) {
          json(res, 404, { detail: "Not found." });
          return;
        }
        res.writeHead(302, { location: a.target, "content-length": "0" }).end();
        return;
      }
      json(res, 404, { detail: "Not found." });
    })().catch(() => res.destroy());
  });
  server.on("connection", (s: Socket) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((ok) => server.listen(0, "127.0.0.1", ok));
  const port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
  return {
    apiUrl: `${base}/api`,
    baseUrl: base,
    downloads,
    get listingRequests() {
      return listingRequests;
    },
    setAssets(dandiset, version, assets) {
      (dandisets[dandiset] ??= {})[version] = assets;
      index();
    },
    resetStats() {
      downloads.clear();
      listingRequests = 0;
    },
    close: () =>
      new Promise<void>((ok) => {
        for (const s of sockets) s.destroy();
        server.close(() => ok());
      }),
  };
}
