/**
 * Precompute jobs of the service: a list of sources (given, or expanded from
 * a DANDI asset listing) built through the service's own probes, cache and
 * BuildManager — so a precomputed index is a cache hit for `GET /lindi` —
 * and optionally written to the mirror directory.
 *
 * - One job runs at a time (`maxRunning`), at most `concurrency` of its items
 *   at once, so the rest of the build slots stay free for interactive
 *   requests.
 * - An item whose output exists (mirror jobs: info.json with the current
 *   generator and the source's current validator; other jobs: the cache
 *   entry) is skipped. An item that fails is recorded with its reason; the
 *   job goes on.
 * - State is a JSON file per job (atomic writes, coalesced, at most every
 *   `persistIntervalMs` while running). On start, unfinished jobs are resumed;
 *   finished items are not looked at again.
 * - Cancelling aborts the job's own builds (see cancel.ts); finished items
 *   (and their mirror files) stay.
 */
import { randomUUID } from "node:crypto";
import { setMaxListeners } from "node:events";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent } from "undici";
import type { FastifyBaseLogger } from "fastify";
import type { CacheEntry, TieredCache } from "../service/cache/index.ts";
import { errorBody, ServiceError, toHttpError } from "../service/errors.ts";
import { normalizeUrl } from "../service/key.ts";
import type { LindiService, ResolvedRequest } from "../service/lindiService.ts";
import type { UrlPolicy } from "../service/urlPolicy.ts";
import type { BuildCancellation } from "./cancel.ts";
import { DANDISET_RE, DEFAULT_DANDI_API, dandiItems, listDandisetNwbAssets, normalizeApiUrl, VERSION_RE } from "./dandi.ts";
import { RateMeter } from "./eta.ts";
import { mirrorUpToDate, writeMirror } from "./mirror.ts";
import { mirrorDirOf, mirrorPathProblem, urlMirrorPath } from "./paths.ts";
import { JOB_ID_RE, JobStore } from "./store.ts";
import { countItems, FINAL_STATES, type ItemError, type JobCounts, type JobItem, type JobRecord, type JobSource, type JobState } from "./types.ts";
import { raceAbort } from "../index/abort.ts";

export interface JobManagerOptions {
  service: LindiService;
  cache: TieredCache;
  policy: UrlPolicy;
  cancellation: BuildCancellation;
  log: FastifyBaseLogger;
  /** Where job records live. */
  jobsDir: string;
  /** The mirror directory (GET /mirror serves it). */
  mirrorDir: string;
  /** Jobs mirror unless they say `mirror: false` (LINDI_MIRROR_DIR set). */
  mirrorByDefault: boolean;
  /** Items of one job built at once: the default and the largest a job may ask for. */
  concurrency: number;
  /** Jobs running at once. Default 1. */
  maxRunning?: number;
  /** Least time between two saves of a running job, ms. Default 500. */
  persistIntervalMs?: number;
  /** Longest a job waits for interactive builds to finish before starting one of its own, ms. Default 2000. */
  yieldMaxMs?: number;
  /** `page_size` of DANDI listings. Default 100. */
  listingPageSize?: number;
}

export interface CreateJobRequest {
  urls?: Array<string | { url: string; path?: string }>;
  dandiset?: string;
  version?: string;
  apiUrl?: string;
  mirror?: boolean;
  concurrency?: number;
}

export interface ItemErrorReport {
  index: number;
  url: string;
  path: string;
  statusCode: number;
  message: string;
}

export interface JobStatus {
  id: string;
  state: JobState;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  source: { kind: "urls" | "dandiset"; dandiset?: string; version?: string; apiUrl?: string };
  mirror: boolean;
  concurrency: number;
  counts: JobCounts;
  listing?: { pages: number; assets: number; count: number | null; nwb: number };
  bytesFetched: number;
  elapsedSeconds: number;
  etaSeconds: number | null;
  itemsPerSecond: number;
  bytesPerSecond: number;
  error?: { statusCode: number; error: string; message: string };
  errors: { total: number; page?: number; perPage?: number; items?: ItemErrorReport[] };
  seq: number;
  resumed: number;
  statusUrl: string;
  eventsUrl: string;
  /** Mirror jobs: where GET /mirror serves the outputs (`<mirrorUrl><item path>`). */
  mirrorUrl?: string;
}

/** The item an event is about. */
export interface ItemReport {
  index: number;
  url: string;
  path: string;
  state: JobItem["state"];
  outcome?: JobItem["outcome"];
  statusCode?: number;
  message?: string;
}

export interface JobEvent {
  type: "progress" | "end";
  seq: number;
  status: JobStatus;
  item?: ItemReport;
}

export type JobListener = (ev: JobEvent) => void;

interface Runtime {
  rec: JobRecord;
  counts: JobCounts;
  abort: AbortController;
  cancelled: boolean;
  meter: RateMeter;
  runStartedAt: number | undefined;
  listeners: Set<JobListener>;
  running: Promise<void> | undefined;
  persistTimer: NodeJS.Timeout | undefined;
}

function iso(ms = Date.now()): string {
  return new Date(ms).toISOString();
}


function itemError(e: unknown): ItemError {
  const err = toHttpError(e);
  let message = err.message;
  if (err.statusCode === 500 && err.cause instanceof Error) message = `internal error: ${err.cause.message}`;
  return { statusCode: err.statusCode, message: message.split("\n")[0]!.slice(0, 2000) };
}

export class JobManager {
  private readonly jobs = new Map<string, Runtime>();
  private readonly queue: Runtime[] = [];
  private readonly store: JobStore;
  private readonly agent: Agent;
  private active = 0;
  /** Builds started by jobs and not settled. */
  private jobBuilds = 0;
  private closing = false;
  readonly mirrorDir: string;

  private constructor(private readonly o: JobManagerOptions) {
    this.store = new JobStore(o.jobsDir);
    this.mirrorDir = path.resolve(o.mirrorDir);
    // listings: the policy's lookup applies to the addresses connected to
    this.agent = new Agent({ connections: 4, connect: { timeout: 10_000, lookup: o.policy.connectLookup } });
  }

  /** Loads the stored jobs and resumes the unfinished ones. */
  static async open(o: JobManagerOptions): Promise<JobManager> {
    const m = new JobManager(o);
    await m.store.open();
    const recs = await m.store.loadAll((file, reason) => o.log.warn({ file, reason }, "unreadable job record ignored"));
    for (const rec of recs) {
      const resume = !FINAL_STATES.has(rec.state);
      if (resume) {
        for (const it of rec.items ?? []) if (it.state === "running") it.state = "pending";
        if (rec.state === "running") rec.resumed++;
        rec.state = "queued";
      }
      const rt = m.runtime(rec);
      m.jobs.set(rec.id, rt);
      if (resume) m.queue.push(rt);
    }
    if (m.queue.length > 0) o.log.info({ jobs: m.queue.map((r) => r.rec.id) }, "resuming precompute jobs");
    m.pump();
    return m;
  }

  private runtime(rec: JobRecord): Runtime {
    const abort = new AbortController();
    setMaxListeners(0, abort.signal);
    return {
      rec,
      counts: countItems(rec.items),
      abort,
      cancelled: false,
      meter: new RateMeter(),
      runStartedAt: undefined,
      listeners: new Set(),
      running: undefined,
      persistTimer: undefined,
    };
  }

  // ---- API ------------------------------------------------------------------

  /** Validates (ServiceError 400/403 with the reasons), stores and queues a job. */
  async create(req: CreateJobRequest): Promise<JobStatus> {
    if (this.closing) throw new ServiceError(503, "the service is shutting down", { "retry-after": "5" });
    const hasUrls = req.urls !== undefined;
    const hasDandiset = req.dandiset !== undefined;
    if (hasUrls === hasDandiset) throw new ServiceError(400, "give either urls (a list of sources) or dandiset (an asset listing to expand), not both or neither");
    const concurrency = Math.max(1, Math.min(req.concurrency ?? this.o.concurrency, this.o.concurrency));
    const mirror = req.mirror ?? this.o.mirrorByDefault;
    let source: JobSource;
    let items: JobItem[] | null;
    if (hasUrls) {
      if (req.version !== undefined || req.apiUrl !== undefined) throw new ServiceError(400, "version and apiUrl go with dandiset, not with urls");
      items = this.planUrls(req.urls!);
      source = { kind: "urls" };
    } else {
      const dandiset = req.dandiset!;
      const version = req.version ?? "draft";
      if (!DANDISET_RE.test(dandiset)) throw new ServiceError(400, `dandiset must be a 6-digit DANDI identifier, got ${JSON.stringify(dandiset.slice(0, 40))}`);
      if (!VERSION_RE.test(version)) throw new ServiceError(400, `version must be "draft" or a published version like 0.230101.1200, got ${JSON.stringify(version.slice(0, 70))}`);
      let apiUrl: string;
      try {
        apiUrl = normalizeApiUrl(req.apiUrl ?? DEFAULT_DANDI_API);
        // the listing's host goes through the same policy as sources
        await this.o.policy.check(apiUrl);
      } catch (e) {
        const err = toHttpError(e);
        throw new ServiceError(err.statusCode === 500 ? 400 : err.statusCode, `apiUrl: ${err.message}`, err.headers);
      }
      source = { kind: "dandiset", dandiset, version, apiUrl };
      items = null;
    }
    const rec: JobRecord = {
      format: 1,
      id: randomUUID(),
      state: "queued",
      source,
      mirror,
      concurrency,
      createdAt: iso(),
      items,
      bytesFetched: 0,
      activeMillis: 0,
      seq: 0,
      resumed: 0,
    };
    await this.store.save(rec);
    const rt = this.runtime(rec);
    this.jobs.set(rec.id, rt);
    this.queue.push(rt);
    this.o.log.info({ job: rec.id, source, items: items?.length ?? null, mirror, concurrency }, "precompute job created");
    this.pump();
    return this.status(rt);
  }

  private planUrls(list: NonNullable<CreateJobRequest["urls"]>): JobItem[] {
    const problems: Array<{ status: number; text: string }> = [];
    const items: JobItem[] = [];
    const urls = new Map<string, number>();
    const dirs = new Map<string, number>();
    for (const [i, entry] of list.entries()) {
      if (problems.length >= 10) break;
      const raw = typeof entry === "string" ? entry : entry.url;
      const given = typeof entry === "string" ? undefined : entry.path;
      let url: string;
      try {
        url = normalizeUrl(this.o.policy.parse(raw));
      } catch (e) {
        const err = toHttpError(e);
        problems.push({ status: err.statusCode === 403 ? 403 : 400, text: `urls[${i}]: ${err.message}` });
        continue;
      }
      const p = given ?? urlMirrorPath(url);
      const why = given === undefined ? undefined : mirrorPathProblem(given);
      if (why) {
        problems.push({ status: 400, text: `urls[${i}].path ${why}` });
        continue;
      }
      const dupUrl = urls.get(url);
      if (dupUrl !== undefined) {
        problems.push({ status: 400, text: `urls[${i}] repeats urls[${dupUrl}]` });
        continue;
      }
      const dir = mirrorDirOf(p);
      const dupDir = dirs.get(dir);
      if (dupDir !== undefined) {
        problems.push({ status: 400, text: `urls[${i}].path is in the same directory as urls[${dupDir}].path (one index per directory: info.json goes beside it)` });
        continue;
      }
      urls.set(url, i);
      dirs.set(dir, i);
      items.push({ url, path: p, state: "pending" });
    }
    if (problems.length > 0) {
      const status = problems.some((p) => p.status === 400) ? 400 : 403;
      throw new ServiceError(status, problems.map((p) => p.text).join("; "));
    }
    return items;
  }

  has(id: string): boolean {
    return this.jobs.has(id);
  }

  /** Status with one page of item errors; undefined for an unknown job. */
  get(id: string, errorsPage = 1, errorsPerPage = 50): JobStatus | undefined {
    const rt = this.jobs.get(id);
    if (!rt) return undefined;
    const s = this.status(rt);
    const failed: ItemErrorReport[] = [];
    const from = (errorsPage - 1) * errorsPerPage;
    let n = 0;
    for (const [index, it] of (rt.rec.items ?? []).entries()) {
      if (it.state !== "failed") continue;
      if (n >= from && failed.length < errorsPerPage) {
        failed.push({ index, url: it.url, path: it.path, statusCode: it.error?.statusCode ?? 500, message: it.error?.message ?? "failed" });
      }
      n++;
    }
    s.errors = { total: n, page: errorsPage, perPage: errorsPerPage, items: failed };
    return s;
  }

  /** Every job, newest first (no item errors; see get). */
  list(state?: JobState): JobStatus[] {
    return [...this.jobs.values()]
      .filter((rt) => state === undefined || rt.rec.state === state)
      .sort((a, b) => b.rec.createdAt.localeCompare(a.rec.createdAt))
      .map((rt) => this.status(rt));
  }

  /**
   * Cancels a queued or running job: its running builds stop, nothing new
   * starts; finished items stay. Resolves when it has stopped. Undefined for
   * an unknown job; throws 409 for a finished one (cancelled ones answer again).
   */
  async cancel(id: string): Promise<JobStatus | undefined> {
    const rt = this.jobs.get(id);
    if (!rt) return undefined;
    const st = rt.rec.state;
    if (st === "cancelled") return this.get(id);
    if (FINAL_STATES.has(st)) throw new ServiceError(409, `job ${id} is already ${st}`);
    rt.cancelled = true;
    rt.abort.abort(new ServiceError(503, `precompute job ${id} was cancelled`, { "retry-after": "1" }));
    const q = this.queue.indexOf(rt);
    if (q >= 0) {
      this.queue.splice(q, 1);
      await this.finish(rt, "cancelled");
    } else if (rt.running) {
      await rt.running;
    }
    this.o.log.info({ job: id, counts: rt.counts }, "precompute job cancelled");
    return this.get(id);
  }

  /** Listen to a job's events (`end` is the last one); returns the unsubscribe function, or undefined for an unknown job. */
  subscribe(id: string, listener: JobListener): (() => void) | undefined {
    const rt = this.jobs.get(id);
    if (!rt) return undefined;
    rt.listeners.add(listener);
    return () => rt.listeners.delete(listener);
  }

  /** The current status as an event (what a new event-stream subscriber gets first). */
  snapshot(id: string): JobEvent | undefined {
    const rt = this.jobs.get(id);
    if (!rt) return undefined;
    return { type: FINAL_STATES.has(rt.rec.state) ? "end" : "progress", seq: rt.rec.seq, status: this.status(rt) };
  }

  /** Stops running jobs (they resume on the next start), saves every job, ends event streams. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const stop = new ServiceError(503, "the service is shutting down", { "retry-after": "5" });
    for (const rt of this.jobs.values()) if (!FINAL_STATES.has(rt.rec.state)) rt.abort.abort(stop);
    await Promise.allSettled([...this.jobs.values()].map((rt) => rt.running));
    for (const rt of this.jobs.values()) {
      clearTimeout(rt.persistTimer);
      rt.persistTimer = undefined;
      if (FINAL_STATES.has(rt.rec.state)) continue;
      this.account(rt);
      if (rt.listeners.size > 0) {
        // the stream ends with the server; the job goes on after the restart
        const ev: JobEvent = { type: "end", seq: ++rt.rec.seq, status: this.status(rt) };
        for (const l of rt.listeners) l(ev);
        rt.listeners.clear();
      }
      await this.store.save(rt.rec).catch((err: unknown) => this.o.log.error({ err, job: rt.rec.id }, "saving a job failed"));
    }
    await this.store.flush();
    await this.agent.close().catch(() => undefined);
  }

  // ---- status & events ----------------------------------------------------------

  private status(rt: Runtime): JobStatus {
    const r = rt.rec;
    const now = Date.now();
    const runMs = rt.runStartedAt !== undefined && r.state === "running" ? now - rt.runStartedAt : 0;
    const c = rt.counts;
    const pace = rt.meter.pace(c.pending + c.running, now);
    const s: JobStatus = {
      id: r.id,
      state: r.state,
      createdAt: r.createdAt,
      source:
        r.source.kind === "dandiset"
          ? { kind: "dandiset", dandiset: r.source.dandiset, version: r.source.version, apiUrl: r.source.apiUrl }
          : { kind: "urls" },
      mirror: r.mirror,
      concurrency: r.concurrency,
      counts: { ...c },
      bytesFetched: r.bytesFetched,
      elapsedSeconds: (r.activeMillis + runMs) / 1000,
      etaSeconds: r.state === "running" ? (r.items === null ? null : pace.etaSeconds) : FINAL_STATES.has(r.state) ? 0 : null,
      itemsPerSecond: 0,
      bytesPerSecond: 0,
      errors: { total: c.failed },
      seq: r.seq,
      resumed: r.resumed,
      statusUrl: `/jobs/${r.id}`,
      eventsUrl: `/jobs/${r.id}/events`,
    };
    if (r.state === "running") {
      s.itemsPerSecond = pace.itemsPerSecond;
      s.bytesPerSecond = pace.bytesPerSecond;
    } else if (FINAL_STATES.has(r.state) && r.activeMillis > 0) {
      // averages over the whole run
      s.itemsPerSecond = (c.done + c.skipped + c.failed) / (r.activeMillis / 1000);
      s.bytesPerSecond = r.bytesFetched / (r.activeMillis / 1000);
    }
    if (r.startedAt) s.startedAt = r.startedAt;
    if (r.finishedAt) s.finishedAt = r.finishedAt;
    if (r.listing) s.listing = { ...r.listing };
    if (r.error) s.error = errorBody(r.error.statusCode, r.error.message);
    if (r.mirror) s.mirrorUrl = "/mirror/";
    return s;
  }

  private emit(rt: Runtime, item?: number): void {
    rt.rec.seq++;
    if (rt.listeners.size === 0) return;
    const ev: JobEvent = { type: "progress", seq: rt.rec.seq, status: this.status(rt) };
    if (item !== undefined) {
      const it = rt.rec.items![item]!;
      ev.item = { index: item, url: it.url, path: it.path, state: it.state };
      if (it.outcome) ev.item.outcome = it.outcome;
      if (it.error) {
        ev.item.statusCode = it.error.statusCode;
        ev.item.message = it.error.message;
      }
    }
    for (const l of rt.listeners) l(ev);
  }

  private schedulePersist(rt: Runtime): void {
    if (rt.persistTimer || this.closing) return;
    rt.persistTimer = setTimeout(() => {
      rt.persistTimer = undefined;
      this.store.save(rt.rec).catch((err: unknown) => this.o.log.error({ err, job: rt.rec.id }, "saving a job failed"));
    }, this.o.persistIntervalMs ?? 500);
    rt.persistTimer.unref();
  }

  /** Adds the current run's time to the stored total. */
  private account(rt: Runtime): void {
    if (rt.runStartedAt !== undefined) {
      rt.rec.activeMillis += Date.now() - rt.runStartedAt;
      rt.runStartedAt = undefined;
    }
  }

  private async finish(rt: Runtime, state: JobState, error?: ItemError): Promise<void> {
    clearTimeout(rt.persistTimer);
    rt.persistTimer = undefined;
    this.account(rt);
    rt.rec.state = state;
    rt.rec.finishedAt = iso();
    if (error) rt.rec.error = error;
    rt.rec.seq++;
    try {
      await this.store.save(rt.rec);
    } catch (err) {
      this.o.log.error({ err, job: rt.rec.id }, "saving a job failed");
    }
    const end: JobEvent = { type: "end", seq: rt.rec.seq, status: this.status(rt) };
    for (const l of rt.listeners) l(end);
    rt.listeners.clear();
  }

  // ---- running --------------------------------------------------------------------

  private pump(): void {
    const max = this.o.maxRunning ?? 1;
    while (!this.closing && this.active < max && this.queue.length > 0) {
      const rt = this.queue.shift()!;
      this.active++;
      rt.running = this.run(rt).finally(() => {
        this.active--;
        rt.running = undefined;
        this.pump();
      });
    }
  }

  private async run(rt: Runtime): Promise<void> {
    const job = rt.rec;
    const signal = rt.abort.signal;
    job.state = "running";
    job.startedAt ??= iso();
    rt.runStartedAt = Date.now();
    rt.meter = new RateMeter();
    this.emit(rt);
    await this.store.save(job).catch((err: unknown) => this.o.log.error({ err, job: job.id }, "saving a job failed"));
    let failure: ItemError | undefined;
    try {
      if (job.items === null) await this.expand(rt);
      await this.runItems(rt);
    } catch (e) {
      if (!signal.aborted) {
        failure = itemError(e);
        this.o.log.warn({ job: job.id, status: failure.statusCode, reason: failure.message }, "precompute job failed");
      }
    }
    if (this.closing) return; // stays unfinished: resumed on the next start (close() saves it)
    if (rt.cancelled) await this.finish(rt, "cancelled");
    else if (failure) await this.finish(rt, "failed", failure);
    else {
      await this.finish(rt, "done");
      this.o.log.info({ job: job.id, counts: rt.counts, bytesFetched: job.bytesFetched, seconds: job.activeMillis / 1000 }, "precompute job done");
    }
  }

  private async expand(rt: Runtime): Promise<void> {
    const job = rt.rec;
    const src = job.source;
    if (src.kind !== "dandiset") throw new Error("a URL job without items");
    const assets = await listDandisetNwbAssets({
      apiUrl: src.apiUrl,
      dandiset: src.dandiset,
      version: src.version,
      pageSize: this.o.listingPageSize ?? 100,
      signal: rt.abort.signal,
      dispatcher: this.agent,
      checkUrl: (u) => this.o.policy.check(u),
      onPage: (p) => {
        job.listing = p;
        this.emit(rt);
      },
    });
    job.items = dandiItems(src.apiUrl, src.dandiset, assets).map((a) => ({
      url: a.url,
      path: a.path,
      state: "pending" as const,
      size: a.size,
      assetPath: a.assetPath,
    }));
    rt.counts = countItems(job.items);
    this.emit(rt);
    await this.store.save(job);
  }

  private async runItems(rt: Runtime): Promise<void> {
    const items = rt.rec.items!;
    const pendingItems: number[] = [];
    for (const [i, it] of items.entries()) if (it.state === "pending") pendingItems.push(i);
    let next = 0;
    const worker = async () => {
      while (!rt.abort.signal.aborted) {
        const i = pendingItems[next++];
        if (i === undefined) return;
        await this.runItem(rt, i);
      }
    };
    await Promise.all(Array.from({ length: Math.min(rt.rec.concurrency, pendingItems.length) }, worker));
  }

  private async runItem(rt: Runtime, i: number): Promise<void> {
    const it = rt.rec.items![i]!;
    const signal = rt.abort.signal;
    it.state = "running";
    rt.counts.pending--;
    rt.counts.running++;
    let bytes = 0;
    try {
      const r = await this.produce(rt, it);
      it.state = r.skipped ? "skipped" : "done";
      if (r.outcome) it.outcome = r.outcome;
      bytes = r.bytesFetched;
      it.bytesFetched = bytes;
      delete it.error;
    } catch (e) {
      if (signal.aborted) {
        // cancelled or shutting down: not a failure of the item; it stays to do
        it.state = "pending";
        rt.counts.running--;
        rt.counts.pending++;
        return;
      }
      it.state = "failed";
      it.error = itemError(e);
    }
    rt.counts.running--;
    rt.counts[it.state as "done" | "skipped" | "failed"]++;
    it.finishedAt = iso();
    rt.rec.bytesFetched += bytes;
    rt.meter.record(bytes);
    this.emit(rt, i);
    this.schedulePersist(rt);
  }

  /** One item: resolve (policy, probe, size), skip when its output exists, else cache or build, then mirror. */
  private async produce(rt: Runtime, it: JobItem): Promise<{ skipped: boolean; outcome?: "built" | "cached"; bytesFetched: number }> {
    const signal = rt.abort.signal;
    const r = await raceAbort(this.o.service.resolve({ url: it.url }), signal);
    const want = { url: r.url, validator: r.validator, options: r.options };
    if (rt.rec.mirror) {
      if (await mirrorUpToDate(this.mirrorDir, it.path, want)) return { skipped: true, bytesFetched: 0 };
    } else if (this.o.cache.has(r.key)) {
      return { skipped: true, bytesFetched: 0 };
    }
    let entry: CacheEntry;
    let built = false;
    const hit = await this.o.cache.get(r.key);
    if (hit) entry = hit.entry;
    else ({ entry, built } = await this.build(r, signal));
    if (signal.aborted) throw signal.reason;
    if (rt.rec.mirror) {
      const m = entry.meta;
      await writeMirror(this.mirrorDir, it.path, entry.identity, {
        url: m.url,
        validator: m.validator,
        source: m.source,
        options: m.options,
        builtAt: m.createdAt,
        buildMillis: m.buildMillis,
        indexBytes: entry.identity.byteLength,
        indexHash: m.hash,
        bytesFetched: m.bytesFetched,
        requests: m.requests,
      });
    }
    return { skipped: false, outcome: built ? "built" : "cached", bytesFetched: built ? entry.meta.bytesFetched : 0 };
  }

  /** Through the service's BuildManager (single flight with viewers; a full queue is waited out). */
  /**
   * Interactive builds first: while builds that no job started are running
   * or waiting, a job starts none (for at most `yieldMaxMs`, so a steady
   * stream of viewers slows a job down but cannot stop it).
   */
  private async yieldToInteractive(signal: AbortSignal): Promise<void> {
    const b = this.o.service.builds;
    const deadline = Date.now() + (this.o.yieldMaxMs ?? 2000);
    while (b.running + b.queued > this.jobBuilds && Date.now() < deadline) {
      await sleep(20, undefined, { signal }).catch(() => undefined);
      if (signal.aborted) throw signal.reason;
    }
  }

  private async build(r: ResolvedRequest, signal: AbortSignal): Promise<{ entry: CacheEntry; built: boolean }> {
    const { service, cancellation } = this.o;
    for (;;) {
      if (signal.aborted) throw signal.reason;
      let active = service.builds.get(r.key);
      if (!(active && (active.state === "queued" || active.state === "running"))) {
        await this.yieldToInteractive(signal);
        active = service.builds.get(r.key);
      }
      const joining = active !== undefined && (active.state === "queued" || active.state === "running");
      // only a build this job starts may be cancelled with it
      const unregister = joining ? undefined : cancellation.register(r.source, signal);
      let started: ReturnType<LindiService["build"]>;
      try {
        started = service.build(r);
      } catch (e) {
        unregister?.();
        const err = toHttpError(e);
        if (err.statusCode === 503 && !service.builds.isClosing) {
          // the build queue is full of interactive requests: they go first
          const wait = Math.min(10, Math.max(1, Number(err.headers["retry-after"] ?? 1)));
          await sleep(wait * 1000, undefined, { signal }).catch(() => undefined);
          continue;
        }
        throw err;
      }
      if ("entry" in started) {
        unregister?.();
        return { entry: started.entry, built: false };
      }
      if (!joining) {
        this.jobBuilds++;
        const settled = () => {
          this.jobBuilds--;
          unregister?.();
        };
        started.job.done.then(settled, settled);
      }
      return { entry: await raceAbort(started.job.done, signal), built: true };
    }
  }
}

export { JOB_ID_RE };
