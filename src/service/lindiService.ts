/**
 * What GET/HEAD /lindi do, apart from HTTP details: check the URL against the
 * policy, probe the source (shared, short-lived), derive the key, look it up
 * in the cache tiers, and start or join the single-flight build.
 */
import { setMaxListeners } from "node:events";
import type { FastifyBaseLogger } from "fastify";
import type { ServiceConfig } from "../config.ts";
import type { BuildOptions, IndexBuilder, SourceInfo } from "../index/types.ts";
import { BuildManager, type BuildJob } from "./builds.ts";
import type { CacheEntry, CacheTier, TieredCache } from "./cache/index.ts";
import { ServiceError, toHttpError } from "./errors.ts";
import { buildOptions, cacheKey, lindiQuery, normalizeUrl, sourceValidator } from "./key.ts";
import type { ServiceMetrics } from "./metrics.ts";
import { ProbeCache } from "./probes.ts";
import type { UrlPolicy } from "./urlPolicy.ts";

export interface ResolvedRequest {
  url: string;
  options: BuildOptions;
  source: SourceInfo;
  validator: string;
  key: string;
}

export type Lookup =
  | { kind: "hit"; entry: CacheEntry; tier: CacheTier }
  | { kind: "miss" };

export interface LindiServiceDeps {
  config: ServiceConfig;
  builder: IndexBuilder;
  cache: TieredCache;
  policy: UrlPolicy;
  metrics: ServiceMetrics;
  log: FastifyBaseLogger;
}

export class LindiService {
  readonly builds: BuildManager;
  readonly probes: ProbeCache;
  /** Aborted when the server starts closing: requests waiting for builds stop waiting. */
  readonly draining = new AbortController();

  constructor(readonly deps: LindiServiceDeps) {
    const { config } = deps;
    setMaxListeners(0, this.draining.signal); // one listener per waiting request
    this.probes = new ProbeCache({
      builder: deps.builder,
      metrics: deps.metrics,
      ttlMs: config.probeTtlSeconds * 1000,
      timeoutMs: config.probeTimeoutSeconds * 1000,
    });
    this.builds = new BuildManager({
      builder: deps.builder,
      cache: deps.cache,
      metrics: deps.metrics,
      log: deps.log,
      concurrency: config.poolSize,
      queueMax: config.buildQueueMax,
      timeoutMs: config.buildTimeoutSeconds * 1000,
      onFailure: (job, e) => {
        // the probe that made this key is stale: look again next time
        if (e.cause && (e.cause as { name?: string }).name === "SourceChangedError") this.probes.forget(job.url);
      },
    });
  }

  /** URL policy → probe → size limit → key. Throws ServiceError. */
  async resolve(q: { url: string; chunksThreshold?: number | "none"; splitBytes?: number | "none" }): Promise<ResolvedRequest> {
    try {
      const u = this.deps.policy.parse(q.url);
      await this.deps.policy.check(u);
      const url = normalizeUrl(u);
      const options = buildOptions(q);
      const source = await this.probes.get(url);
      if (source.size > this.deps.config.maxSourceBytes) {
        throw new ServiceError(
          413,
          `source is ${source.size} bytes; this service indexes sources up to ${this.deps.config.maxSourceBytes} bytes`,
        );
      }
      const validator = sourceValidator(source);
      return { url, options, source, validator, key: cacheKey(url, options, validator) };
    } catch (e) {
      throw toHttpError(e);
    }
  }

  /** Memory, then disk (hits and misses are counted). */
  async lookup(key: string): Promise<Lookup> {
    const hit = await this.deps.cache.get(key);
    if (hit) {
      this.deps.metrics.cacheHits.inc({ tier: hit.tier });
      return { kind: "hit", entry: hit.entry, tier: hit.tier };
    }
    this.deps.metrics.cacheMisses.inc();
    return { kind: "miss" };
  }

  /**
   * After a miss: joins the running build for the key or starts one (503 when
   * the queue is full) — unless a build finished since the lookup, whose
   * entry is returned instead (checked synchronously with starting, so two
   * builds of one key cannot overlap).
   */
  build(r: ResolvedRequest): { job: BuildJob } | { entry: CacheEntry } {
    const late = this.deps.cache.peek(r.key);
    if (late) return { entry: late };
    return { job: this.builds.ensure(r.key, r.url, r.options, r.source, r.validator) };
  }

  /**
   * Waits up to `seconds` for the job: the entry, or undefined when still
   * running. Rejects with the build's error; 503 when the server is closing.
   */
  async wait(job: BuildJob, seconds: number): Promise<CacheEntry | undefined> {
    if (seconds <= 0 && job.state !== "succeeded" && job.state !== "failed") return undefined;
    let timer: NodeJS.Timeout | undefined;
    let onDrain: (() => void) | undefined;
    const signal = this.draining.signal;
    try {
      return await Promise.race([
        job.done,
        new Promise<undefined>((resolve) => {
          timer = setTimeout(() => resolve(undefined), seconds * 1000);
        }),
        new Promise<never>((_, reject) => {
          onDrain = () => reject(new ServiceError(503, "the service is shutting down", { "retry-after": "5" }));
          if (signal.aborted) onDrain();
          else signal.addEventListener("abort", onDrain, { once: true });
        }),
      ]);
    } finally {
      clearTimeout(timer);
      if (onDrain) signal.removeEventListener("abort", onDrain);
    }
  }

  /** The query string of GET /lindi for a resolved request (links in 202 answers). */
  resultQuery(url: string, options: BuildOptions): string {
    return lindiQuery(url, options);
  }

  /** Stop waiting, fail builds, flush the disk cache, close the builder. */
  async close(): Promise<void> {
    this.draining.abort();
    await this.builds.close();
    await this.deps.cache.flush();
    await this.deps.builder.close();
  }
}
