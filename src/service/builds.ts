/**
 * Single-flight builds with a bounded queue: one job per cache key, at most
 * `concurrency` running, at most `queueMax` waiting (beyond: 503 with
 * Retry-After). A job runs to the end even when the client that started it
 * left; it stops on timeout (504) or shutdown (503). A finished job's
 * result goes to the cache; failures are not cached (only remembered for a
 * while so that status polls can report them).
 */
import { LRUCache } from "lru-cache";
import type { FastifyBaseLogger } from "fastify";
import type { BuildOptions, IndexBuilder, SourceInfo } from "../index/types.ts";
import { makeEntry, type CacheEntry, type TieredCache } from "./cache/index.ts";
import { ServiceError, toHttpError, unavailable } from "./errors.ts";
import type { BuildOutcome, ServiceMetrics } from "./metrics.ts";

export type BuildState = "queued" | "running" | "succeeded" | "failed";

export interface BuildJob {
  /** The cache key. */
  readonly id: string;
  readonly url: string;
  readonly options: BuildOptions;
  readonly source: SourceInfo;
  readonly validator: string;
  state: BuildState;
  readonly createdAt: number;
  startedAt?: number;
  finishedAt?: number;
  error?: ServiceError;
  /** Resolves with the stored entry; rejects with a ServiceError. */
  readonly done: Promise<CacheEntry>;
}

export interface BuildManagerOptions {
  builder: IndexBuilder;
  cache: TieredCache;
  metrics: ServiceMetrics;
  log: FastifyBaseLogger;
  concurrency: number;
  queueMax: number;
  timeoutMs: number;
  /** How long finished jobs stay visible to status polls, ms. Default 1 hour. */
  finishedTtlMs?: number;
  /** Called when a build fails (after it is marked failed). */
  onFailure?: (job: BuildJob, err: ServiceError) => void;
}

interface Internal {
  job: BuildJob;
  resolve(e: CacheEntry): void;
  reject(e: ServiceError): void;
  abort: AbortController;
}

function outcomeOf(err: ServiceError): BuildOutcome {
  if (err.statusCode === 422) return "unconvertible";
  if (err.statusCode === 504) return "timeout";
  if (err.statusCode === 503) return "aborted";
  if (err.statusCode >= 400 && err.statusCode < 500) return "source_error";
  if (err.statusCode === 502) return "source_error";
  return "error";
}

export class BuildManager {
  private readonly active = new Map<string, Internal>();
  private readonly queue: Internal[] = [];
  private readonly finished: LRUCache<string, BuildJob>;
  /** Builder calls not settled yet (a timed-out build keeps its slot until the builder lets go). */
  private readonly inBuilder = new Set<Promise<unknown>>();
  private runningCount = 0;
  private closing = false;

  constructor(private readonly o: BuildManagerOptions) {
    this.finished = new LRUCache<string, BuildJob>({ max: 10_000, ttl: o.finishedTtlMs ?? 3_600_000 });
  }

  get running(): number {
    return this.runningCount;
  }

  get queued(): number {
    return this.queue.length;
  }

  get isClosing(): boolean {
    return this.closing;
  }

  /** A queued, running or recently finished job. */
  get(id: string): BuildJob | undefined {
    return this.active.get(id)?.job ?? this.finished.get(id);
  }

  /** The running/queued job for `key`, or a new one; throws 503 when the queue is full or the service stops. */
  ensure(key: string, url: string, options: BuildOptions, source: SourceInfo, validator: string): BuildJob {
    const existing = this.active.get(key);
    if (existing) return existing.job;
    if (this.closing) {
      this.o.metrics.buildsRejected.inc({ reason: "shutting_down" });
      throw unavailable("the service is shutting down", 5);
    }
    const free = this.runningCount < this.o.concurrency;
    if (!free && this.queue.length >= this.o.queueMax) {
      this.o.metrics.buildsRejected.inc({ reason: "queue_full" });
      throw unavailable(
        `build queue full (${this.runningCount} running, ${this.queue.length} waiting); retry later`,
        this.retryAfterSeconds(),
      );
    }
    let resolve!: (e: CacheEntry) => void;
    let reject!: (e: ServiceError) => void;
    const done = new Promise<CacheEntry>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    done.catch(() => undefined); // nobody may be waiting
    const job: BuildJob = { id: key, url, options, source, validator, state: "queued", createdAt: Date.now(), done };
    const it: Internal = { job, resolve, reject, abort: new AbortController() };
    this.active.set(key, it);
    this.finished.delete(key);
    if (free) this.start(it);
    else this.queue.push(it);
    return job;
  }

  /** Seconds a client should wait before retrying after a 503 for a full queue. */
  retryAfterSeconds(): number {
    return Math.min(60, Math.max(1, Math.ceil(((this.queue.length + 1) * 5) / Math.max(1, this.o.concurrency))));
  }

  private start(it: Internal): void {
    this.runningCount++;
    const { job } = it;
    job.state = "running";
    job.startedAt = Date.now();
    const t0 = performance.now();
    const timer = setTimeout(
      () => it.abort.abort(new ServiceError(504, `build did not finish within ${Math.round(this.o.timeoutMs / 1000)} s`)),
      this.o.timeoutMs,
    );
    const signal = it.abort.signal;
    const building = this.o.builder.build(job.source, job.options, signal);
    this.inBuilder.add(building);
    const aborted = new Promise<never>((_, rej) => {
      const onAbort = () => rej(signal.reason);
      if (signal.aborted) onAbort();
      else signal.addEventListener("abort", onAbort, { once: true });
    });
    aborted.catch(() => undefined);
    building
      .catch(() => undefined)
      .finally(() => {
        clearTimeout(timer);
        this.inBuilder.delete(building);
        this.runningCount--;
        this.next();
      });

    Promise.race([building, aborted])
      .then(async (result) => {
        if (signal.aborted) throw signal.reason;
        const entry = await makeEntry(
          {
            key: job.id,
            url: job.url,
            options: job.options,
            validator: job.validator,
            source: { size: job.source.size, etag: job.source.etag, lastModified: job.source.lastModified },
            createdAt: new Date().toISOString(),
            buildMillis: result.millis,
            bytesFetched: result.bytesFetched,
            requests: result.requests,
          },
          result.json,
        );
        this.o.cache.put(entry).then(
          (kept) => {
            if (!kept) this.o.log.warn({ key: job.id, bytes: entry.identity.byteLength }, "index larger than the disk cache; kept in memory only");
          },
          (err: unknown) => this.o.log.error({ err, key: job.id }, "disk cache write failed"),
        );
        const seconds = (performance.now() - t0) / 1000;
        this.o.metrics.builds.inc({ outcome: "success" });
        this.o.metrics.buildSeconds.observe({ outcome: "success" }, seconds);
        this.o.metrics.originBytes.inc(result.bytesFetched);
        this.o.metrics.originRequests.inc(result.requests);
        this.o.log.info(
          { key: job.id, url: job.url, seconds: +seconds.toFixed(3), bytes: entry.identity.byteLength, fetched: result.bytesFetched, requests: result.requests },
          "index built",
        );
        this.finish(it, undefined);
        it.resolve(entry);
      })
      .catch((e: unknown) => {
        const err = toHttpError(e);
        const outcome = outcomeOf(err);
        this.o.metrics.builds.inc({ outcome });
        this.o.metrics.buildSeconds.observe({ outcome }, (performance.now() - t0) / 1000);
        if (err.statusCode >= 500 && err.statusCode !== 502 && err.statusCode !== 504 && err.statusCode !== 503) {
          this.o.log.error({ err: e, key: job.id, url: job.url }, "build failed");
        } else {
          this.o.log.warn({ key: job.id, url: job.url, status: err.statusCode, reason: err.message }, "build failed");
        }
        this.finish(it, err);
        it.reject(err);
        this.o.onFailure?.(job, err);
      });
  }

  private finish(it: Internal, err: ServiceError | undefined): void {
    const { job } = it;
    job.state = err ? "failed" : "succeeded";
    job.finishedAt = Date.now();
    if (err) job.error = err;
    if (this.active.get(job.id) === it) this.active.delete(job.id);
    this.finished.set(job.id, job);
  }

  private next(): void {
    while (this.runningCount < this.o.concurrency && this.queue.length > 0) {
      const it = this.queue.shift()!;
      if (it.abort.signal.aborted) continue;
      this.start(it);
    }
  }

  /**
   * Stops taking builds, fails queued and running ones with 503, and waits
   * (at most `graceMs`) for the builder to let go of them.
   */
  async close(graceMs = 10_000): Promise<void> {
    this.closing = true;
    const stop = unavailable("the service is shutting down", 5);
    for (const it of this.queue.splice(0)) {
      this.finish(it, stop);
      it.reject(stop);
      this.o.metrics.builds.inc({ outcome: "aborted" });
    }
    for (const it of this.active.values()) it.abort.abort(stop);
    if (this.inBuilder.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.allSettled([...this.inBuilder]),
        new Promise((r) => {
          timer = setTimeout(r, graceMs);
        }),
      ]);
      clearTimeout(timer);
    }
  }
}
