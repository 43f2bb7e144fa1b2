/**
 * `createIndexBuilder(config)`: the IndexBuilder the service (and the CLI)
 * use to index remote files with range requests only, on a worker pool.
 *
 *   main thread: HTTP client + per-build session (block store, prefetcher,
 *                answers to the worker's blocking block requests and to
 *                phase B's exact reads)
 *   worker:      phase A (h5wasm over a synchronous block cache), phase B
 *                (layout reader over forwarded exact reads), emit, serialize
 *
 * Timeouts: `buildTimeoutMs` bounds opening the source and, separately, the
 * run on a worker (measured from the moment a worker picks the build up, so
 * time spent waiting in the queue does not count; the caller's AbortSignal
 * covers that).
 */
import { MessageChannel, type ResourceLimits } from "node:worker_threads";
import {
  HttpClient,
  HttpSourceError,
  openHttpSource,
  SourceChangedError,
  SourceForbiddenError,
  SourceNotFoundError,
  type HttpByteSource,
  type HttpClientOptions,
  type UrlCheck,
} from "../hdf5/httpByteSource.ts";
import type { BuildOptions, BuildResult, IndexBuilder, SourceInfo } from "./types.ts";
import { IndexWorkerPool } from "./pool.ts";
import { BuildAbortedError, BuildQueueFullError, BuildTimeoutError, RemoteReadError, reviveWorkerError } from "./remoteErrors.ts";
import { DEFAULT_PREFETCH, type PrefetchOptions, type PrefetchStats } from "./remotePrefetch.ts";
import { RemoteBuildSession, type SessionStats } from "./remoteSession.ts";
import { createBridgeBuffer } from "./syncBridge.ts";
import type { WorkerFault, WorkerStats, WorkerTask } from "./workerProtocol.ts";
import { raceAbort } from "./abort.ts";

export interface IndexBuilderConfig {
  /** Worker threads. Default: the number of cores. */
  poolSize?: number;
  /** Builds that may wait for a thread (more fail with BuildQueueFullError). Default unbounded. */
  maxQueue?: number;
  /** Per-build timeout, ms. Default 10 minutes. */
  buildTimeoutMs?: number;
  /** Block size of phase A's block cache, bytes (16–64 KiB is sensible). Default 16 KiB. */
  blockSize?: number;
  /**
   * Bytes of blocks one build may hold: the worker's cache and, separately,
   * the main-side block store and the chunk indexes read ahead for phase B
   * (RangeCache) each stay below this (the prefetch window is at most half
   * of it). Default 32 MiB.
   */
  cacheBytes?: number;
  /** Size of the shared transfer area (largest answer of one blocking request). Default 4 MiB. */
  transferBytes?: number;
  /** Prefetching for phase A (see remotePrefetch.ts); false disables it. Default on. */
  prefetch?: PrefetchOptions | false;
  /** Called for every URL (and redirect target) before it is fetched; throw to refuse. Default: everything allowed. */
  checkUrl?: UrlCheck;
  /** An HTTP client to share (not closed by `close()`), or options for the builder's own. */
  http?: HttpClient | HttpClientOptions;
  /** V8 limits per worker (see IndexPoolOptions). */
  resourceLimits?: ResourceLimits;
  /** Only for tests: makes the worker misbehave for chosen builds. */
  testHooks?: { workerFault?: (source: SourceInfo) => WorkerFault | undefined };
}

export interface RemoteBuildStats {
  /** Phase A as seen from the main thread: blocking requests, round trips (waits on the network), … */
  session: SessionStats;
  prefetch: PrefetchStats | null;
  /** As seen from the worker. */
  worker: WorkerStats | null;
  /** Block store: range requests and bytes for blocks. */
  blockFetches: number;
  blockBytes: number;
}

export interface RemoteBuildResult extends BuildResult {
  stats: RemoteBuildStats;
}

/** Options of one build beyond the service's BuildOptions. */
export interface RemoteBuildOptions extends BuildOptions {
  /** The URL written into the refs, when it differs from the URL read (CLI `--url`). Default: `source.url`. */
  refUrl?: string;
}

export interface RemoteIndexBuilder extends IndexBuilder {
  build(source: SourceInfo, opts: RemoteBuildOptions, signal?: AbortSignal): Promise<RemoteBuildResult>;
  readonly pool: IndexWorkerPool;
  readonly client: HttpClient;
}

export const DEFAULT_BUILDER_CONFIG = {
  buildTimeoutMs: 10 * 60_000,
  blockSize: 16 * 1024,
  cacheBytes: 32 * 1024 * 1024,
  transferBytes: 4 * 1024 * 1024,
} as const;

function sameEtag(a: string, b: string): boolean {
  const strip = (s: string) => s.trim().replace(/^W\//i, "");
  return strip(a) === strip(b);
}


class Builder implements RemoteIndexBuilder {
  readonly pool: IndexWorkerPool;
  readonly client: HttpClient;
  private readonly ownsClient: boolean;
  private readonly timeoutMs: number;
  private readonly blockSize: number;
  private readonly cacheBytes: number;
  private readonly transferBytes: number;
  private readonly prefetch: PrefetchOptions | null;
  private readonly checkUrl: UrlCheck | undefined;
  private readonly faultFor: ((s: SourceInfo) => WorkerFault | undefined) | undefined;
  private readonly inflight = new Set<AbortController>();
  private closed = false;

  constructor(config: IndexBuilderConfig) {
    this.timeoutMs = config.buildTimeoutMs ?? DEFAULT_BUILDER_CONFIG.buildTimeoutMs;
    this.blockSize = config.blockSize ?? DEFAULT_BUILDER_CONFIG.blockSize;
    this.cacheBytes = config.cacheBytes ?? DEFAULT_BUILDER_CONFIG.cacheBytes;
    this.transferBytes = Math.max(config.transferBytes ?? DEFAULT_BUILDER_CONFIG.transferBytes, this.blockSize * 4);
    if (!Number.isSafeInteger(this.blockSize) || this.blockSize < 512) throw new RangeError(`invalid block size ${this.blockSize}`);
    if (config.prefetch === false) {
      this.prefetch = null;
    } else {
      const p = { ...DEFAULT_PREFETCH, ...config.prefetch };
      // unused prefetched blocks must not be pushed out of the store by newer ones
      p.windowBytes = Math.min(p.windowBytes, Math.floor(this.cacheBytes / 2));
      this.prefetch = p;
    }
    this.checkUrl = config.checkUrl;
    this.faultFor = config.testHooks?.workerFault;
    if (config.http instanceof HttpClient) {
      this.client = config.http;
      this.ownsClient = false;
    } else {
      this.client = new HttpClient({ ...config.http, checkUrl: config.checkUrl ?? config.http?.checkUrl });
      this.ownsClient = true;
    }
    this.pool = new IndexWorkerPool({
      size: config.poolSize,
      maxQueue: config.maxQueue,
      resourceLimits: config.resourceLimits,
    });
  }

  private open(url: string, signal: AbortSignal): Promise<HttpByteSource> {
    const opening = openHttpSource(url, this.client, this.checkUrl ? { checkUrl: this.checkUrl } : {});
    // a source opened after the caller gave up is closed, not leaked
    opening.then(
      (s) => {
        if (signal.aborted) void s.close();
      },
      () => undefined,
    );
    return raceAbort(opening, signal);
  }

  /**
   * An external raw data file, resolved like HDF5 resolves relative names:
   * beside the file (relative to its URL). Only plain relative names; every
   * URL still goes through `checkUrl`.
   */
  private openExternal(base: string, name: string, signal: AbortSignal): Promise<HttpByteSource> {
    const parts = name.split(/[\\/]/);
    if (name === "" || /^[a-z][a-z0-9+.-]*:/i.test(name) || name.startsWith("/") || parts.includes("..") || parts.includes("")) {
      return Promise.reject(new Error(`external file name ${JSON.stringify(name)} is not a plain relative name`));
    }
    const target = new URL(parts.map(encodeURIComponent).join("/"), base);
    return this.open(target.href, signal);
  }

  async probe(url: string, signal?: AbortSignal): Promise<SourceInfo> {
    if (this.closed) throw new BuildAbortedError(url, "the index builder is closed");
    const ctl = new AbortController();
    const onAbort = () => ctl.abort(new BuildAbortedError(url, signal?.reason));
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    const timer = setTimeout(() => ctl.abort(new BuildTimeoutError(url, this.timeoutMs, "open")), this.timeoutMs);
    try {
      const src = await this.open(url, ctl.signal);
      try {
        return {
          url,
          resolvedUrl: src.resolvedUrl,
          size: src.size,
          etag: src.etag ?? null,
          lastModified: src.lastModified ?? null,
        };
      } finally {
        await src.close();
      }
    } finally {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
    }
  }

  async build(info: SourceInfo, opts: RemoteBuildOptions, signal?: AbortSignal): Promise<RemoteBuildResult> {
    const t0 = performance.now();
    const url = info.url;
    if (this.closed) throw new BuildAbortedError(url, "the index builder is closed");
    if (!this.pool.hasRoom) throw new BuildQueueFullError(url);
    const ctl = new AbortController();
    this.inflight.add(ctl);
    const onAbort = () => ctl.abort(new BuildAbortedError(url, signal?.reason));
    if (signal?.aborted) onAbort();
    signal?.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined = setTimeout(
      () => ctl.abort(new BuildTimeoutError(url, this.timeoutMs, "open")),
      this.timeoutMs,
    );
    let source: HttpByteSource | undefined;
    let session: RemoteBuildSession | undefined;
    try {
      source = await this.open(url, ctl.signal);
      if (source.size !== info.size) {
        throw new SourceChangedError(`size is now ${source.size}, was ${info.size}`, url);
      }
      if (info.etag && source.etag && !sameEtag(info.etag, source.etag)) {
        throw new SourceChangedError(`ETag is now ${source.etag}, was ${info.etag}`, url);
      }
      clearTimeout(timer);
      timer = undefined;
      const channel = new MessageChannel();
      const sab = createBridgeBuffer(this.transferBytes);
      session = new RemoteBuildSession({
        source,
        port: channel.port1,
        sab,
        blockSize: this.blockSize,
        storeBytes: this.cacheBytes,
        prefetch: this.prefetch && { ...this.prefetch, chunksThreshold: opts.chunksThreshold },
        onStart: () => {
          timer = setTimeout(() => ctl.abort(new BuildTimeoutError(url, this.timeoutMs)), this.timeoutMs);
        },
        openExternal: (name) => this.openExternal(url, name, ctl.signal),
        // a missing or refused external file is a property of the file; anything else is transport trouble
        isFatal: (e) => e instanceof HttpSourceError && !(e instanceof SourceNotFoundError || e instanceof SourceForbiddenError),
      });
      const task: WorkerTask = {
        url: opts.refUrl ?? url,
        size: source.size,
        chunksThreshold: opts.chunksThreshold,
        splitBytes: opts.splitBytes,
        blockSize: this.blockSize,
        cacheBytes: this.cacheBytes,
        // a single wait longer than the whole build means the main side is gone
        waitTimeoutMs: this.timeoutMs + 30_000,
        sab,
        port: channel.port2,
        fault: this.faultFor?.(info),
      };
      const result = await this.pool.run(task, ctl.signal);
      if (ctl.signal.aborted) throw ctl.signal.reason;
      if (session.failed) throw session.firstError;
      if (!result.ok) {
        if (result.ioFailed) throw new RemoteReadError(url, result.error.message);
        throw reviveWorkerError(result.error);
      }
      const storeStats = session.store.stats;
      return {
        json: result.json,
        bytesFetched: source.stats.bytes,
        requests: source.stats.requests,
        millis: Math.round(performance.now() - t0),
        stats: {
          session: { ...session.stats },
          prefetch: session.prefetchStats ? { ...session.prefetchStats } : null,
          worker: result.stats,
          blockFetches: storeStats.fetches,
          blockBytes: storeStats.bytesFetched,
        },
      };
    } catch (e) {
      // a timeout or cancellation explains whatever failed after it
      if (ctl.signal.aborted) throw ctl.signal.reason;
      // a read error seen by the session explains the worker's failure
      if (session?.failed && !(e === session.firstError)) throw session.firstError;
      throw e;
    } finally {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      this.inflight.delete(ctl);
      session?.close();
      await source?.close();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ctl of this.inflight) ctl.abort(new BuildAbortedError(undefined, "the index builder is closed"));
    await this.pool.close();
    if (this.ownsClient) await this.client.close();
  }
}

/** The IndexBuilder of the service: HTTP range source + worker pool. */
export function createIndexBuilder(config: IndexBuilderConfig = {}): RemoteIndexBuilder {
  return new Builder(config);
}
