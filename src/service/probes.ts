/**
 * Source probes (size + validator) shared by concurrent requests for the
 * same URL and reused for a short TTL, so a burst of requests for one file
 * costs one HEAD at the origin. Failures are not reused.
 */
import { LRUCache } from "lru-cache";
import { OriginTimeoutError } from "../hdf5/httpErrors.ts";
import type { IndexBuilder, SourceInfo } from "../index/types.ts";
import type { ServiceMetrics } from "./metrics.ts";

export interface ProbeCacheOptions {
  builder: IndexBuilder;
  metrics: ServiceMetrics;
  ttlMs: number;
  timeoutMs: number;
}

export class ProbeCache {
  private readonly fresh: LRUCache<string, SourceInfo> | undefined;
  private readonly inflight = new Map<string, Promise<SourceInfo>>();

  constructor(private readonly o: ProbeCacheOptions) {
    this.fresh = o.ttlMs > 0 ? new LRUCache<string, SourceInfo>({ max: 10_000, ttl: o.ttlMs }) : undefined;
  }

  async get(url: string): Promise<SourceInfo> {
    const hit = this.fresh?.get(url);
    if (hit) {
      this.o.metrics.probes.inc({ result: "reused" });
      return hit;
    }
    const running = this.inflight.get(url);
    if (running) {
      this.o.metrics.probes.inc({ result: "reused" });
      return running;
    }
    const p = this.run(url);
    this.inflight.set(url, p);
    try {
      const info = await p;
      this.fresh?.set(url, info);
      this.o.metrics.probes.inc({ result: "fetched" });
      return info;
    } catch (e) {
      this.o.metrics.probes.inc({ result: "failed" });
      throw e;
    } finally {
      this.inflight.delete(url);
    }
  }

  /** Forget what is known about `url` (e.g. after a build found the source changed). */
  forget(url: string): void {
    this.fresh?.delete(url);
  }

  private async run(url: string): Promise<SourceInfo> {
    const ac = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const err = new OriginTimeoutError(`no answer to the probe within ${this.o.timeoutMs} ms`, url);
        ac.abort(err);
        reject(err);
      }, this.o.timeoutMs);
    });
    try {
      return await Promise.race([this.o.builder.probe(url, ac.signal), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
