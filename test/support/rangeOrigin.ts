/**
 * A real HTTP origin on 127.0.0.1 (ephemeral port) serving files from a
 * directory with Range support, plus injectable latency, bandwidth caps and
 * faults, for testing remote readers. Loopback only.
 *
 *   const origin = await startRangeOrigin({ root });
 *   origin.url("h5py/foo.h5"); origin.redirectUrl("h5py/foo.h5", 2);
 *   origin.setFaults({ error500: 2 }); origin.stats; origin.resetStats();
 *   await origin.close();
 */
import { setMaxListeners } from "node:events";
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { open, stat } from "node:fs/promises";
import type { Stats } from "node:fs";
import path from "node:path";
import { setTimeout as sleepFor } from "node:timers/promises";

/** A fault that fires for the first `count` eligible requests (default: always). */
export interface CountedFault {
  count?: number;
}

export interface RangeOriginFaults {
  /** Added before answering every request, ms. */
  latencyMs?: number;
  /** Cap of body bytes per second per response (so per connection). */
  bandwidthBytesPerSec?: number;
  /**
   * Reset the connection (TCP RST) after part of a GET body: for the first
   * `count` bodies, or each body with `probability` (seeded RNG, `seed`).
   */
  resetMidBody?: CountedFault & { probability?: number; seed?: number; afterFraction?: number };
  /** Answer 500 to the first N requests (any path, before redirects). */
  error500?: number;
  /** Answer `code` (e.g. 429, 503) to the first `count` requests, with an optional Retry-After (s). */
  status?: CountedFault & { code: number; retryAfter?: number };
  /** 404 for every file (true) or for the listed paths (relative to root). */
  notFound?: boolean | string[];
  /** Ignore Range: answer 200 with the whole body, no Accept-Ranges. */
  ignoreRange?: boolean;
  /** Announce the full Content-Length, send only `fraction` of it (default 0.5), then close (FIN). */
  truncate?: CountedFault & { fraction?: number };
  /** Send the body `bytes` at a time every `intervalMs`. */
  drip?: CountedFault & { bytes: number; intervalMs: number };
  /** Never answer (the socket stays open until the client gives up or the origin closes). */
  hang?: CountedFault;
  /** Refuse HEAD (like presigned S3 GET URLs): 403 or 405. */
  refuseHead?: 403 | 405 | false;
  /** Replace every file's ETag (simulates a changed source). */
  etag?: string;
  /** 403 for the first N file requests (not redirects). */
  forbidden?: number;
  /**
   * Redirects add `?expires=<ms>&sig=<n>`; file requests without a valid,
   * unexpired signature get 403 (like presigned URLs that expire).
   */
  signedRedirects?: { ttlMs: number };
  /** Absolute base (e.g. another origin's URL) for redirect targets instead of this origin. */
  redirectBase?: string;
}

export interface RangeOriginOptions extends RangeOriginFaults {
  /** Directory served. */
  root: string;
  /** Server keep-alive timeout, ms (Node default 5000). */
  keepAliveTimeoutMs?: number;
  /** Most recent requests kept in `log`. Default 5000. */
  logLimit?: number;
}

export interface PathStats {
  requests: number;
  bytes: number;
}

export interface RangeOriginStats {
  requests: number;
  heads: number;
  gets: number;
  redirects: number;
  /** Body bytes written. */
  bytes: number;
  /** Faults that fired, by name. */
  faults: Record<string, number>;
  /** Requests being answered right now, and the most at once since the last reset. */
  concurrent: number;
  maxConcurrent: number;
  /** TCP connections accepted, open now, most open at once. */
  connections: number;
  openConnections: number;
  maxOpenConnections: number;
  /** Per path (relative to root, no query; redirect paths count under the redirect path). */
  byPath: Record<string, PathStats>;
}

export interface RequestLogEntry {
  method: string;
  path: string;
  query: string;
  range: string | undefined;
  authorization: string | undefined;
  status: number | undefined;
}

export interface RangeOrigin {
  /** `http://127.0.0.1:<port>` */
  readonly baseUrl: string;
  readonly port: number;
  readonly root: string;
  /** URL of a file, path relative to root. */
  url(relPath: string): string;
  /** URL that redirects `hops` times (302) before reaching `relPath`. */
  redirectUrl(relPath: string, hops?: number): string;
  readonly stats: RangeOriginStats;
  readonly log: readonly RequestLogEntry[];
  resetStats(): void;
  /** Replace all faults (and restart their counters). */
  setFaults(faults: RangeOriginFaults): void;
  /** Change some faults, keep the others (their counters restart too). */
  updateFaults(faults: Partial<RangeOriginFaults>): void;
  readonly faults: Readonly<RangeOriginFaults>;
  /** Stop: destroys every open socket (hung requests included). */
  close(): Promise<void>;
}

/** Deterministic RNG (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function encodePath(rel: string): string {
  return rel
    .replace(/^\/+/, "")
    .split("/")
    .map((s) => encodeURIComponent(s))
    .join("/");
}

function newStats(): RangeOriginStats {
  return {
    requests: 0,
    heads: 0,
    gets: 0,
    redirects: 0,
    bytes: 0,
    faults: {},
    concurrent: 0,
    maxConcurrent: 0,
    connections: 0,
    openConnections: 0,
    maxOpenConnections: 0,
    byPath: {},
  };
}

const FAULT_KEYS = ["error500", "status", "forbidden", "hang", "truncate", "drip", "resetMidBody"] as const;

export async function startRangeOrigin(opts: RangeOriginOptions): Promise<RangeOrigin> {
  const root = path.resolve(opts.root);
  const { root: _r, keepAliveTimeoutMs, logLimit = 5000, ...initialFaults } = opts;
  let faults: RangeOriginFaults = { ...initialFaults };
  let remaining: Record<string, number> = {};
  let rng = seededRandom(1);
  let signCounter = 0;
  let stats = newStats();
  /** Live gauges, kept apart from the resettable counters. */
  const live = { concurrent: 0, openConnections: 0 };
  const log: RequestLogEntry[] = [];
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  // every delayed request listens for the origin closing; many can be in flight
  setMaxListeners(0, closing.signal);

  function armFaults(): void {
    remaining = {};
    const counted = (k: string, v: CountedFault | number | undefined) => {
      if (v === undefined) return;
      remaining[k] = typeof v === "number" ? v : (v.count ?? Infinity);
    };
    counted("error500", faults.error500);
    counted("status", faults.status);
    counted("forbidden", faults.forbidden);
    counted("hang", faults.hang);
    counted("truncate", faults.truncate);
    counted("drip", faults.drip);
    if (faults.resetMidBody) {
      const r = faults.resetMidBody;
      remaining.resetMidBody = r.count ?? Infinity;
      rng = seededRandom(r.seed ?? 1);
    }
  }
  armFaults();

  /** Consumes one firing of a counted fault; true when it fires. */
  function fire(key: (typeof FAULT_KEYS)[number]): boolean {
    const left = remaining[key];
    if (left === undefined || left <= 0) return false;
    if (key === "resetMidBody" && faults.resetMidBody?.probability !== undefined) {
      if (rng() >= faults.resetMidBody.probability) return false;
    }
    remaining[key] = left - 1;
    stats.faults[key] = (stats.faults[key] ?? 0) + 1;
    return true;
  }

  async function sleep(ms: number): Promise<void> {
    if (ms <= 0) return;
    try {
      await sleepFor(ms, undefined, { signal: closing.signal });
    } catch {
      /* origin closing */
    }
  }

  function pathStats(p: string): PathStats {
    return (stats.byPath[p] ??= { requests: 0, bytes: 0 });
  }

  function etagFor(size: number, mtimeMs: number): string {
    return faults.etag ?? `"${size.toString(16)}-${Math.floor(mtimeMs).toString(16)}"`;
  }

  async function waitWritable(res: http.ServerResponse): Promise<void> {
    if (!res.writableNeedDrain) return;
    await new Promise<void>((resolve) => {
      const done = () => {
        res.off("drain", done);
        res.off("close", done);
        resolve();
      };
      res.on("drain", done);
      res.on("close", done);
    });
  }

  async function sendBody(
    res: http.ServerResponse,
    data: Uint8Array,
    relPath: string,
    cut: { at: number; mode: "reset" | "truncate" } | undefined,
    drip: { bytes: number; intervalMs: number } | undefined,
  ): Promise<void> {
    const limit = cut ? cut.at : data.byteLength;
    const bw = faults.bandwidthBytesPerSec;
    let pos = 0;
    while (pos < limit) {
      if (res.destroyed || closing.signal.aborted) return;
      let n = limit - pos;
      let wait = 0;
      if (drip) {
        n = Math.max(1, drip.bytes);
        wait = drip.intervalMs;
      } else if (bw && bw > 0) {
        n = Math.max(1, Math.floor(bw / 50));
        wait = 20;
      }
      n = Math.min(n, limit - pos);
      res.write(data.subarray(pos, pos + n));
      pos += n;
      stats.bytes += n;
      pathStats(relPath).bytes += n;
      await waitWritable(res);
      if (wait && pos < limit) await sleep(wait);
    }
    if (res.destroyed) return;
    if (!cut) {
      res.end();
      return;
    }
    const socket = res.socket;
    if (cut.mode === "reset") {
      // let the written part go out first, then RST
      await sleep(5);
      if (socket && !socket.destroyed) socket.resetAndDestroy();
      else res.destroy();
    } else {
      if (socket && !socket.destroyed) socket.end();
      else res.destroy();
    }
  }

  /**
   * What a GET or HEAD of `rel` answers from the file system: undefined when
   * there is no such file; for GET, the range asked (or "invalid") and its bytes.
   * Failures are returned, not thrown (the request may end before it looks).
   */
  async function loadFile(
    rel: string,
    method: string,
    rangeHeader: string | undefined,
  ): Promise<{ st: Stats; range: { start: number; end: number } | "invalid" | undefined; data?: Uint8Array } | { error: unknown } | undefined> {
    try {
      const file = rel.startsWith("redirect/") ? undefined : resolveFile(rel);
      const st = file ? await stat(file).catch(() => undefined) : undefined;
      if (!file || !st || !st.isFile()) return undefined;
      if (method !== "GET") return { st, range: undefined };
      const range = faults.ignoreRange ? undefined : parseRange(rangeHeader, st.size);
      if (range === "invalid") return { st, range };
      const start = range ? range.start : 0;
      const length = (range ? range.end : st.size - 1) - start + 1;
      return { st, range, data: length > 0 ? await readRange(file, start, length) : new Uint8Array(0) };
    } catch (error) {
      return { error };
    }
  }

  function resolveFile(relPath: string): string | undefined {
    const full = path.resolve(root, "." + path.posix.sep + relPath);
    if (full !== root && !full.startsWith(root + path.sep)) return undefined;
    return full;
  }

  async function readRange(file: string, start: number, length: number): Promise<Uint8Array> {
    const fh = await open(file, "r");
    try {
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await fh.read(buf, done, length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buf.subarray(0, done);
    } finally {
      await fh.close();
    }
  }

  function parseRange(h: string | undefined, size: number): { start: number; end: number } | "invalid" | undefined {
    if (!h) return undefined;
    const m = /^bytes=(\d*)-(\d*)$/.exec(h.trim());
    if (!m || (m[1] === "" && m[2] === "")) return undefined; // multi-range or junk: ignore
    let start: number;
    let end: number;
    if (m[1] === "") {
      const suffix = Number(m[2]);
      if (suffix === 0) return "invalid";
      start = Math.max(0, size - suffix);
      end = size - 1;
    } else {
      start = Number(m[1]);
      end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
      if (m[2] !== "" && Number(m[2]) < start) return undefined;
    }
    if (start >= size) return "invalid";
    return { start, end };
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse, entry: RequestLogEntry): Promise<void> {
    const method = req.method ?? "GET";
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    let rel: string;
    try {
      rel = decodeURIComponent(u.pathname).replace(/^\/+/, "");
    } catch {
      res.writeHead(400).end();
      return;
    }
    entry.path = rel;
    pathStats(rel).requests++;

    // the injected latency is the time to first byte: the file is read while it runs (as a
    // network round trip would add to a store's own work), not after it
    const loading = method === "GET" || method === "HEAD" ? loadFile(rel, method, req.headers.range) : undefined;
    await sleep(faults.latencyMs ?? 0);
    if (closing.signal.aborted) return;

    if (fire("hang")) return; // never answer
    if (fire("error500")) {
      res.writeHead(500, { "content-type": "text/plain" }).end("injected 500");
      return;
    }
    if (faults.status && fire("status")) {
      const h: Record<string, string> = { "content-type": "text/plain" };
      if (faults.status.retryAfter !== undefined) h["retry-after"] = String(faults.status.retryAfter);
      res.writeHead(faults.status.code, h).end(`injected ${faults.status.code}`);
      return;
    }
    if (method !== "GET" && method !== "HEAD") {
      res.writeHead(405, { allow: "GET, HEAD" }).end();
      return;
    }

    // /redirect/<target>: 302 to /<target>
    if (rel.startsWith("redirect/")) {
      stats.redirects++;
      const target = rel.slice("redirect/".length);
      let loc = (faults.redirectBase ? faults.redirectBase.replace(/\/+$/, "") : "") + "/" + encodePath(target);
      if (faults.signedRedirects) {
        loc += `?expires=${Date.now() + faults.signedRedirects.ttlMs}&sig=${++signCounter}`;
      }
      res.writeHead(302, { location: loc, "content-length": "0" }).end();
      return;
    }

    if (faults.signedRedirects) {
      const exp = Number(u.searchParams.get("expires"));
      if (!u.searchParams.get("sig") || !Number.isFinite(exp) || exp < Date.now()) {
        stats.faults.expiredSignature = (stats.faults.expiredSignature ?? 0) + 1;
        res.writeHead(403, { "content-type": "application/xml" }).end("<Error><Code>AccessDenied</Code></Error>");
        return;
      }
    }
    if (fire("forbidden")) {
      res.writeHead(403, { "content-type": "text/plain" }).end("injected 403");
      return;
    }
    const nf = faults.notFound;
    if (nf === true || (Array.isArray(nf) && nf.includes(rel))) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const loaded = await loading;
    if (loaded && "error" in loaded) throw loaded.error;
    if (!loaded) {
      res.writeHead(404, { "content-type": "text/plain" }).end("not found");
      return;
    }
    const { st, range, data } = loaded;
    const size = st.size;
    const common: Record<string, string> = {
      etag: etagFor(size, st.mtimeMs),
      "last-modified": st.mtime.toUTCString(),
      "content-type": "application/octet-stream",
    };
    if (!faults.ignoreRange) common["accept-ranges"] = "bytes";

    if (method === "HEAD") {
      if (faults.refuseHead) {
        res.writeHead(faults.refuseHead, { "content-type": "text/plain" }).end();
        return;
      }
      res.writeHead(200, { ...common, "content-length": String(size) }).end();
      return;
    }

    if (range === "invalid" || !data) {
      res.writeHead(416, { ...common, "content-range": `bytes */${size}` }).end();
      return;
    }
    const start = range ? range.start : 0;
    const end = range ? range.end : size - 1;
    const headers: Record<string, string> = { ...common, "content-length": String(data.byteLength) };
    if (range) headers["content-range"] = `bytes ${start}-${end}/${size}`;

    let cut: { at: number; mode: "reset" | "truncate" } | undefined;
    if (data.byteLength > 0 && fire("resetMidBody")) {
      cut = { at: Math.floor(data.byteLength * (faults.resetMidBody?.afterFraction ?? 0.5)), mode: "reset" };
    } else if (data.byteLength > 0 && fire("truncate")) {
      cut = { at: Math.floor(data.byteLength * (faults.truncate?.fraction ?? 0.5)), mode: "truncate" };
    }
    const drip = faults.drip && fire("drip") ? faults.drip : undefined;
    res.writeHead(range ? 206 : 200, headers);
    if (cut || drip || faults.bandwidthBytesPerSec) res.flushHeaders();
    await sendBody(res, data, rel, cut, drip);
  }

  const server = http.createServer((req, res) => {
    const method = req.method ?? "GET";
    stats.requests++;
    if (method === "HEAD") stats.heads++;
    if (method === "GET") stats.gets++;
    live.concurrent++;
    stats.maxConcurrent = Math.max(stats.maxConcurrent, live.concurrent);
    const u = new URL(req.url ?? "/", "http://127.0.0.1");
    const entry: RequestLogEntry = {
      method,
      path: u.pathname,
      query: u.search,
      range: req.headers.range,
      authorization: req.headers.authorization,
      status: undefined,
    };
    log.push(entry);
    if (log.length > logLimit) log.splice(0, log.length - logLimit);
    res.on("close", () => {
      entry.status = res.headersSent ? res.statusCode : undefined;
      live.concurrent--;
    });
    handle(req, res, entry).catch((err) => {
      if (!res.headersSent && !res.destroyed) res.writeHead(500).end(String(err));
      else res.destroy();
    });
  });
  if (keepAliveTimeoutMs !== undefined) server.keepAliveTimeout = keepAliveTimeoutMs;
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    stats.connections++;
    live.openConnections++;
    stats.maxOpenConnections = Math.max(stats.maxOpenConnections, live.openConnections);
    socket.on("close", () => {
      sockets.delete(socket);
      live.openConnections--;
    });
  });
  server.on("clientError", (_err, socket) => {
    socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const baseUrl = `http://127.0.0.1:${port}`;
  let closed: Promise<void> | undefined;

  return {
    baseUrl,
    port,
    root,
    url: (relPath) => `${baseUrl}/${encodePath(relPath)}`,
    redirectUrl: (relPath, hops = 1) => `${baseUrl}/${"redirect/".repeat(hops)}${encodePath(relPath)}`,
    get stats() {
      return { ...stats, concurrent: live.concurrent, openConnections: live.openConnections };
    },
    get log() {
      return log;
    },
    resetStats() {
      stats = newStats();
      stats.maxConcurrent = live.concurrent;
      stats.maxOpenConnections = live.openConnections;
      log.length = 0;
    },
    setFaults(f) {
      faults = { ...f };
      armFaults();
    },
    updateFaults(f) {
      faults = { ...faults, ...f };
      armFaults();
    },
    get faults() {
      return faults;
    },
    close() {
      closed ??= new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
        server.closeAllConnections();
      });
      return closed;
    },
  };
}
