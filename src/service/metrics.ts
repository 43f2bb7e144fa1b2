/**
 * Prometheus metrics of one server instance (own registry, so several
 * instances in one process — tests — do not collide).
 */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";

export type BuildOutcome = "success" | "unconvertible" | "source_error" | "timeout" | "aborted" | "error";

export interface ServiceMetrics {
  registry: Registry;
  builds: Counter<"outcome">;
  buildSeconds: Histogram<"outcome">;
  buildsRejected: Counter<"reason">;
  cacheHits: Counter<"tier">;
  cacheMisses: Counter;
  cacheCorrupt: Counter;
  originBytes: Counter;
  originRequests: Counter;
  probes: Counter<"result">;
  queueDepth: Gauge;
  buildsRunning: Gauge;
  cacheBytes: Gauge<"tier">;
  cacheEntries: Gauge<"tier">;
  httpRequests: Counter<"route" | "method" | "status">;
  httpSeconds: Histogram<"route" | "method">;
  sliceInflightBytes: Gauge;
  sliceWaiting: Gauge;
  chunkCacheBytes: Gauge<"kind">;
  inflateWorkerChunks: Gauge<"outcome">;
  answerCacheBytes: Gauge;
  answerCacheLookups: Gauge<"outcome">;
}

export interface MetricsSources {
  queueDepth(): number;
  running(): number;
  cache(): { memoryBytes: number; memoryEntries: number; diskBytes: number; diskEntries: number };
  /** The data endpoints' state (zeros before they exist). */
  data(): {
    sliceBytes: number;
    sliceWaiting: number;
    encodedChunkBytes: number;
    decodedChunkBytes: number;
    /** Chunks inflated on the inflate workers, and chunks recovered from a dying one (since start). */
    inflateOffloaded: number;
    inflateRecovered: number;
    /** The answer cache: bytes held, lookups that hit and missed (since start). */
    answerBytes: number;
    answerHits: number;
    answerMisses: number;
  };
}

export function createMetrics(sources: MetricsSources, opts: { defaultMetrics?: boolean } = {}): ServiceMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  /** A gauge of the data endpoints' state with one label, a value per label value. */
  const dataGauge = <L extends string>(name: string, help: string, label: L, values: (d: ReturnType<MetricsSources["data"]>) => Record<string, number>) =>
    new Gauge<L>({
      name,
      help,
      labelNames: [label],
      registers,
      collect() {
        for (const [value, n] of Object.entries(values(sources.data()))) this.set({ [label]: value } as Record<L, string>, n);
      },
    });
  /** An unlabelled gauge of the data endpoints' state. */
  const dataValue = (name: string, help: string, value: (d: ReturnType<MetricsSources["data"]>) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(value(sources.data()));
      },
    });
  const cacheGauge = (name: string, help: string, pick: (c: ReturnType<MetricsSources["cache"]>, tier: string) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ["tier"] as const,
      registers,
      collect() {
        const c = sources.cache();
        this.set({ tier: "memory" }, pick(c, "memory"));
        this.set({ tier: "disk" }, pick(c, "disk"));
      },
    });
  return {
    registry,
    builds: new Counter({
      name: "lindi_builds_total",
      help: "Index builds finished, by outcome",
      labelNames: ["outcome"] as const,
      registers,
    }),
    buildSeconds: new Histogram({
      name: "lindi_build_duration_seconds",
      help: "Wall time of index builds (queue wait excluded)",
      labelNames: ["outcome"] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600],
      registers,
    }),
    buildsRejected: new Counter({
      name: "lindi_builds_rejected_total",
      help: "Builds refused before starting (queue full, shutting down)",
      labelNames: ["reason"] as const,
      registers,
    }),
    cacheHits: new Counter({
      name: "lindi_cache_hits_total",
      help: "Index requests answered from the cache, by tier",
      labelNames: ["tier"] as const,
      registers,
    }),
    cacheMisses: new Counter({ name: "lindi_cache_misses_total", help: "Index lookups that missed every tier", registers }),
    cacheCorrupt: new Counter({
      name: "lindi_cache_corrupt_total",
      help: "Disk cache files found damaged and dropped",
      registers,
    }),
    originBytes: new Counter({
      name: "lindi_origin_bytes_fetched_total",
      help: "Bytes fetched from source origins by successful builds",
      registers,
    }),
    originRequests: new Counter({
      name: "lindi_origin_requests_total",
      help: "HTTP requests made to source origins by successful builds",
      registers,
    }),
    probes: new Counter({
      name: "lindi_source_probes_total",
      help: "Source probes (size + validator), by result (fetched, reused, failed)",
      labelNames: ["result"] as const,
      registers,
    }),
    queueDepth: new Gauge({
      name: "lindi_build_queue_depth",
      help: "Builds waiting for a free slot",
      registers,
      collect() {
        this.set(sources.queueDepth());
      },
    }),
    buildsRunning: new Gauge({
      name: "lindi_builds_running",
      help: "Builds running now",
      registers,
      collect() {
        this.set(sources.running());
      },
    }),
    cacheBytes: cacheGauge("lindi_cache_bytes", "Bytes held by each cache tier", (c, t) =>
      t === "memory" ? c.memoryBytes : c.diskBytes,
    ),
    cacheEntries: cacheGauge("lindi_cache_entries", "Entries held by each cache tier", (c, t) =>
      t === "memory" ? c.memoryEntries : c.diskEntries,
    ),
    httpRequests: new Counter({
      name: "lindi_http_requests_total",
      help: "HTTP requests answered, by route, method and status",
      labelNames: ["route", "method", "status"] as const,
      registers,
    }),
    sliceInflightBytes: dataValue("lindi_slice_inflight_bytes", "Decoded bytes of /slice answers in progress (bounded by LINDI_SLICE_INFLIGHT_BYTES)", (d) => d.sliceBytes),
    sliceWaiting: dataValue("lindi_slice_waiting", "/slice requests waiting for a share of LINDI_SLICE_INFLIGHT_BYTES", (d) => d.sliceWaiting),
    chunkCacheBytes: dataGauge("lindi_chunk_cache_bytes", "Bytes held by the data endpoints' chunk caches: encoded (as fetched) and decoded", "kind", (d) => ({
      encoded: d.encodedChunkBytes,
      decoded: d.decodedChunkBytes,
    })),
    inflateWorkerChunks: dataGauge(
      "lindi_inflate_worker_chunks",
      "Chunks since start inflated on the inflate workers (offloaded) or, held by a worker that died, on the event loop (recovered)",
      "outcome",
      (d) => ({ offloaded: d.inflateOffloaded, recovered: d.inflateRecovered }),
    ),
    answerCacheBytes: dataValue("lindi_answer_cache_bytes", "Bytes held by the cache of encoded /slice and /meta answers (LINDI_ANSWER_CACHE_BYTES)", (d) => d.answerBytes),
    answerCacheLookups: dataGauge("lindi_answer_cache_lookups", "Lookups in the answer cache since start, by outcome (hit: answered without reading or encoding)", "outcome", (d) => ({
      hit: d.answerHits,
      miss: d.answerMisses,
    })),
    httpSeconds: new Histogram({
      name: "lindi_http_request_duration_seconds",
      help: "HTTP request duration, by route and method",
      labelNames: ["route", "method"] as const,
      buckets: [0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60],
      registers,
    }),
  };
}
