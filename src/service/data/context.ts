/**
 * What the data endpoints (/meta, /chunk, /slice) share: one HTTP client (the
 * URL policy on every URL, redirect and connection), one chunk cache bounded
 * in bytes, opened external array links, and parsed indexes.
 *
 * A request names its index either by `url=` (an HDF5/NWB asset: the index
 * comes from LindiService exactly as GET /lindi gets it — cache tiers, or a
 * build joined or started) or by `lindi=` (an existing .lindi.json or
 * .lindi.tar, read with openLindiFile; `./` refs of a tar become byte ranges of
 * the tar). Parsed documents are kept (LRU) with one LindiRefStore each.
 *
 * Ref URLs are tagged `#lindi-v=<version>` in the parsed copy (the version of
 * the index: its cache key, or the .lindi file's validator). HTTP never sends
 * fragments, but the chunk cache and the opened-source caches key on the
 * tagged URL, so bytes cached for one version of a source are never served
 * for another.
 */
import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import { Agent } from "undici";
import type { FastifyBaseLogger } from "fastify";
import type { ServiceConfig } from "../../config.ts";
import { HttpClient, openHttpSource } from "../../hdf5/httpByteSource.ts";
import { openLindiFile } from "../../lindi/lindiFile.ts";
import { parsePythonJson, PyFloat, type PyJson } from "../../lindi/pythonJson.ts";
import {
  ChunkCache,
  DecodedChunkCache,
  ExternalDatasetCache,
  LindiRefStore,
  routingRangeReader,
  sourceOpener,
  type LindiRefs,
  type SourceOpener,
} from "../../slices/index.ts";
import type { CacheEntry } from "../cache/index.ts";
import { ServiceError, toHttpError } from "../errors.ts";
import { normalizeUrl } from "../key.ts";
import type { LindiService } from "../lindiService.ts";
import { policyAgent } from "../policyAgent.ts";
import type { UrlPolicy } from "../urlPolicy.ts";
import { dataHttpError } from "./errors.ts";
import { AnswerCache } from "./answerCache.ts";
import { ByteBudget } from "./byteBudget.ts";
import { directRangeReader, type DirectRangeReader } from "./rangeReader.ts";
import { TreeIndex } from "./tree.ts";

/** The source parameters every data endpoint takes. */
export interface SourceQuery {
  url?: string;
  lindi?: string;
  chunksThreshold?: number | "none";
  splitBytes?: number | "none";
  wait?: number;
}

/** A parsed index ready for reads. */
export interface OpenedIndex {
  /** Version id (hex): the cache key for `url=`, a hash of URL + validator for `lindi=`. */
  id: string;
  source: { kind: "url"; url: string; key: string } | { kind: "lindi"; url: string; container: string };
  doc: LindiRefs;
  store: LindiRefStore;
  /** Split threshold the index was built with, when known (storage classification in /meta). */
  splitBytes: number | null | undefined;
  /** Group/dataset structure of the refs (built on first use). */
  tree(): TreeIndex;
}

export interface DataContextDeps {
  config: ServiceConfig;
  service: LindiService;
  policy: UrlPolicy;
  log: FastifyBaseLogger;
}

/** Parsed documents kept, in estimated bytes: JSON text × this factor. */
const PARSED_SIZE_FACTOR = 4;
const TAG_PREFIX = "#lindi-v=";

function isHttp(u: string): boolean {
  return /^https?:\/\//i.test(u);
}

/** Removes the version tag (and any fragment) of a tagged ref URL. */
export function untagged(url: string): string {
  const i = url.indexOf("#");
  return i < 0 ? url : url.slice(0, i);
}

function isObj(v: PyJson | undefined): v is Record<string, PyJson> {
  return v !== null && v !== undefined && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
}

/** The fragment tagRefs appends to a version's http(s) ref URLs. */
function versionTag(version: string): string {
  return `${TAG_PREFIX}${version.slice(0, 16)}`;
}

/** Tags every http(s) ref URL, template and external-link URL of a parsed document (in place). */
function tagRefs(doc: LindiRefs, version: string): void {
  const tag = versionTag(version);
  const t = (u: string) => (isHttp(u) && !u.includes("#") ? u + tag : u);
  for (const [k, v] of Object.entries(doc.refs)) {
    if (Array.isArray(v) && typeof v[0] === "string") v[0] = t(v[0]);
    else if (k.endsWith(".zattrs") && isObj(v)) {
      const link = v["_EXTERNAL_ARRAY_LINK"];
      if (isObj(link) && typeof link["url"] === "string") link["url"] = t(link["url"]);
    }
  }
  if (doc.templates) for (const [k, v] of Object.entries(doc.templates)) doc.templates[k] = t(v);
}

/** What is known about a lindi= URL; its parsed index lives in the shared `parsed` LRU under `id`. */
interface LindiEntry {
  validator: string;
  checkedAt: number;
  id: string;
}

export class DataContext {
  readonly client: HttpClient;
  readonly chunkCache: ChunkCache;
  /** Decoded chunks (a quarter of LINDI_CHUNK_CACHE_BYTES): warm reads skip decompression. */
  readonly decodedCache: DecodedChunkCache;
  readonly externalCache = new ExternalDatasetCache({ max: 64, ttlMs: 10 * 60_000 });
  /** Decoded bytes of /slice answers in progress (LINDI_SLICE_INFLIGHT_BYTES). */
  readonly sliceBudget: ByteBudget;
  /** Encoded /slice and /meta answers by ETag (LINDI_ANSWER_CACHE_BYTES). */
  readonly answers: AnswerCache;
  readonly openSource: SourceOpener;
  private readonly dispatcher: Agent;
  /** Byte ranges of ref URLs (plain Range GETs, no probe; see rangeReader.ts). */
  readonly rangeReader: DirectRangeReader;
  private readonly parsed: LRUCache<string, OpenedIndex>;
  private readonly parsing = new Map<string, Promise<OpenedIndex>>();
  private readonly lindiFiles: LRUCache<string, LindiEntry>;
  private readonly lindiOpening = new Map<string, Promise<OpenedIndex>>();

  constructor(readonly deps: DataContextDeps) {
    const { config, policy } = deps;
    this.dispatcher = policyAgent(policy, 16);
    this.client = new HttpClient({ checkUrl: policy.check, dispatcher: this.dispatcher, userAgent: "lindi-service" });
    this.chunkCache = new ChunkCache({ maxBytes: Math.max(1, config.chunkCacheBytes) });
    this.decodedCache = new DecodedChunkCache({ maxBytes: Math.max(1, Math.floor(config.chunkCacheBytes / 4)) });
    this.rangeReader = directRangeReader(this.client);
    this.sliceBudget = new ByteBudget(deps.config.sliceInflightBytes);
    this.answers = new AnswerCache(config.answerCacheBytes);
    this.openSource = sourceOpener({ httpClient: this.client });
    const parsedBytes = Math.max(32 * 1024 * 1024, 2 * config.memoryCacheBytes);
    this.parsed = new LRUCache<string, OpenedIndex>({
      maxSize: parsedBytes,
      sizeCalculation: (ix) => Math.max(1, (ix as OpenedIndex & { bytes?: number }).bytes ?? 1),
    });
    this.lindiFiles = new LRUCache<string, LindiEntry>({ max: 10_000 });
  }

  /**
   * The store factory: every index gets its own store over the shared reader and chunk cache.
   * `sourceEtag`: the ETag the index was built from; reads of its source must answer with it.
   */
  private makeIndex(id: string, source: OpenedIndex["source"], doc: LindiRefs, splitBytes: number | null | undefined, bytes: number, sourceEtag?: string): OpenedIndex {
    tagRefs(doc, id);
    if (source.kind === "url" && sourceEtag !== undefined && isHttp(source.url)) this.rangeReader.expectEtag(source.url + versionTag(id), sourceEtag);
    const store = new LindiRefStore(doc, { rangeReader: routingRangeReader({ http: this.rangeReader }), cache: this.chunkCache });
    let tree: TreeIndex | undefined;
    const ix: OpenedIndex & { bytes: number } = {
      id,
      source,
      doc,
      store,
      splitBytes,
      tree: () => (tree ??= new TreeIndex(doc.refs)),
      bytes: bytes * PARSED_SIZE_FACTOR,
    };
    return ix;
  }

  /** The index a request names (exactly one of `url=`, `lindi=`). Throws ServiceError. */
  async open(q: SourceQuery): Promise<OpenedIndex> {
    const hasUrl = q.url !== undefined && q.url !== "";
    const hasLindi = q.lindi !== undefined && q.lindi !== "";
    if (hasUrl === hasLindi) throw new ServiceError(400, "give exactly one of url= (an HDF5/NWB file) or lindi= (a .lindi.json or .lindi.tar)");
    if (hasLindi && (q.chunksThreshold !== undefined || q.splitBytes !== undefined)) {
      throw new ServiceError(400, "chunksThreshold and splitBytes apply to url= sources only");
    }
    return hasUrl ? this.openUrl(q) : this.openLindi(q.lindi!);
  }

  private async openUrl(q: SourceQuery): Promise<OpenedIndex> {
    const { service, config } = this.deps;
    const r = await service.resolve({ url: q.url!, chunksThreshold: q.chunksThreshold, splitBytes: q.splitBytes });
    // the key names one source version and options, so one parsed index serves it (even after the
    // cache tiers dropped the JSON): no cache read per request
    const parsed = this.parsed.get(r.key);
    if (parsed) return parsed;
    let entry: CacheEntry | undefined;
    const found = await service.lookup(r.key);
    if (found.kind === "hit") entry = found.entry;
    else {
      const started = service.build(r);
      if ("entry" in started) entry = started.entry;
      else {
        const wait = Math.min(q.wait ?? config.defaultWaitSeconds, config.maxWaitSeconds);
        entry = await service.wait(started.job, wait);
        if (!entry) {
          const retry = Math.min(10, Math.max(1, service.builds.queued + 1));
          throw new ServiceError(503, `the index of this source is still being built (status: /builds/${started.job.id}); retry later`, {
            "retry-after": String(retry),
            location: `/builds/${started.job.id}`,
          });
        }
      }
    }
    const e = entry;
    return this.parsedIndex(r.key, () => {
      let parsed: PyJson;
      try {
        parsed = parsePythonJson(e.identity.toString("utf8"));
      } catch (err) {
        throw new ServiceError(500, `the cached index of ${r.url} cannot be parsed`, {}, { cause: err });
      }
      const doc = parsed as unknown as LindiRefs;
      return this.makeIndex(r.key, { kind: "url", url: r.url, key: r.key }, doc, r.options.splitBytes, e.identity.byteLength, r.source.etag ?? undefined);
    });
  }

  private async parsedIndex(id: string, make: () => OpenedIndex): Promise<OpenedIndex> {
    const hit = this.parsed.get(id);
    if (hit) return hit;
    let p = this.parsing.get(id);
    if (!p) {
      p = Promise.resolve().then(make);
      this.parsing.set(id, p);
      p.then(
        (ix) => {
          this.parsed.set(id, ix);
          this.parsing.delete(id);
        },
        () => this.parsing.delete(id),
      );
    }
    return p;
  }

  /** A .lindi.json / .lindi.tar by URL: reused for LINDI_PROBE_TTL_SECONDS, then revalidated (size + ETag). */
  private async openLindi(raw: string): Promise<OpenedIndex> {
    const { policy, config } = this.deps;
    let url: string;
    try {
      const u = policy.parse(raw);
      await policy.check(u);
      url = normalizeUrl(u);
    } catch (e) {
      throw toHttpError(e);
    }
    const ttl = config.probeTtlSeconds * 1000;
    const known = this.lindiFiles.get(url);
    const ready = known && this.parsed.get(known.id);
    if (ready && Date.now() - known.checkedAt < ttl) return ready;
    let p = this.lindiOpening.get(url);
    if (!p) {
      p = this.loadLindi(url, known);
      this.lindiOpening.set(url, p);
      p.then(
        () => this.lindiOpening.delete(url),
        () => this.lindiOpening.delete(url),
      );
    }
    return p;
  }

  private async loadLindi(url: string, known: LindiEntry | undefined): Promise<OpenedIndex> {
    const { config } = this.deps;
    try {
      const probe = await openHttpSource(url, this.client);
      await probe.close();
      if (probe.size > config.maxSourceBytes) {
        throw new ServiceError(413, `the LINDI file is ${probe.size} bytes; this service reads files up to ${config.maxSourceBytes} bytes`);
      }
      const validator = `${probe.etag ?? ""}|${probe.lastModified ?? ""}|${probe.size}`;
      const ready = known && known.validator === validator ? this.parsed.get(known.id) : undefined;
      if (known && ready) {
        known.checkedAt = Date.now();
        return ready;
      }
      const file = await openLindiFile(url, { httpClient: this.client });
      let doc: LindiRefs;
      try {
        // a remote tar: `./name` refs → byte ranges of the tar itself (spec 10.5)
        let portable;
        try {
          portable = file.portableDoc();
        } catch {
          portable = file.doc; // a plain JSON with `./` refs: those refs fail when read
        }
        doc = { refs: { ...portable.refs }, ...(portable.templates ? { templates: { ...portable.templates } } : {}) };
      } finally {
        await file.close();
      }
      const id = createHash("sha256").update(`${url}\0${validator}`).digest("hex");
      const index = this.makeIndex(id, { kind: "lindi", url, container: file.container }, doc, undefined, probe.size);
      this.parsed.set(id, index);
      this.lindiFiles.set(url, { validator, checkedAt: Date.now(), id });
      return index;
    } catch (e) {
      throw dataHttpError(e, "open");
    }
  }

  /** Forgets cached answers, chunks, opened sources and parsed indexes (benchmarks: a cold start without restarting). */
  clearCaches(opts: { parsed?: boolean } = {}): void {
    this.answers.clear();
    this.chunkCache.clear();
    this.decodedCache.clear();
    this.rangeReader.clear();
    this.externalCache.clear();
    if (opts.parsed) {
      this.parsed.clear();
      this.lindiFiles.clear();
    }
  }

  async close(): Promise<void> {
    this.externalCache.clear();
    this.rangeReader.clear();
    await this.client.close();
    await this.dispatcher.destroy().catch(() => undefined);
  }
}

declare module "fastify" {
  interface FastifyInstance {
    /** Shared state of /meta, /chunk and /slice (src/service/data/context.ts). */
    lindiData: DataContext;
  }
}
