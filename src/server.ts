/**
 * Builds the fastify app from a typed config and its dependencies (the index
 * builder; optionally a logger and cache hooks). src/main.ts starts it.
 *
 *   const app = await buildServer(config); // or buildServer(config, { builder }) with another IndexBuilder
 *   await app.listen({ port: config.port, host: config.host });
 *   ...
 *   await app.close(); // stops builds, flushes the disk cache, closes the builder
 */
import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyServerOptions } from "fastify";
import fastifySwagger from "@fastify/swagger";
import fastifyCompress from "@fastify/compress";
import fastifyCors from "@fastify/cors";
import underPressure from "@fastify/under-pressure";
import type { ServiceConfig } from "./config.ts";
import type { IndexBuilder } from "./index/types.ts";
import { createIndexBuilder } from "./index/builder.ts";
import { redactUrl } from "./hdf5/httpErrors.ts";
import { TieredCache, type TieredCacheOptions } from "./service/cache/index.ts";
import { errorBody, ServiceError, toHttpError } from "./service/errors.ts";
import { LindiService } from "./service/lindiService.ts";
import { createMetrics, type ServiceMetrics } from "./service/metrics.ts";
import { ErrorResponse } from "./service/schemas.ts";
import { policyAgent } from "./service/policyAgent.ts";
import { createUrlPolicy, type UrlPolicy } from "./service/urlPolicy.ts";
import lindiRoutes from "../routes/lindi.ts";
import buildRoutes from "../routes/builds.ts";
import healthRoutes from "../routes/health.ts";
import metricsRoutes from "../routes/metrics.ts";
import docsRoutes from "../routes/docs.ts";
// ---- data endpoints (/meta, /chunk, /slice) ----
import { JSON_COMPRESSION } from "./service/data/compression.ts";
import { DataContext } from "./service/data/context.ts";
import { inflateWorkers, useInflateWorkers } from "./slices/inflateWorkers.ts";
import metaRoutes from "../routes/meta.ts";
import chunkRoutes from "../routes/chunk.ts";
import sliceRoutes from "../routes/slice.ts";
// ---- precompute jobs and the mirror (src/jobs) ----
import { BuildCancellation, JobManager, jobSettings } from "./jobs/index.ts";
import jobRoutes from "../routes/jobs.ts";
import mirrorRoutes from "../routes/mirror.ts";

export interface ServerDeps {
  /** The index builder (default: `createIndexBuilder` from the config); closed when the server closes. */
  builder?: IndexBuilder;
  /** The URL policy (default: from the config); pass the same one to the builder's `checkUrl`. */
  policy?: UrlPolicy;
  /** A pino logger to use instead of creating one from `config.logLevel`. */
  logger?: FastifyBaseLogger;
  /** Test hook into disk cache writes. */
  onCacheWrite?: TieredCacheOptions["onWrite"];
}

export interface ServiceContext {
  config: ServiceConfig;
  service: LindiService;
  cache: TieredCache;
  metrics: ServiceMetrics;
}

declare module "fastify" {
  interface FastifyInstance {
    lindi: ServiceContext;
  }
}

export const API_VERSION = "0.1.0";

/** The URL policy of a config (the same function the builder gets as `checkUrl`). */
export function urlPolicyFor(config: ServiceConfig): UrlPolicy {
  return createUrlPolicy({ allowedHosts: config.allowedHosts, allowPrivateNetworks: config.allowPrivateNetworks });
}

/**
 * The real builder, configured from the service config: the URL policy runs
 * on every URL and redirect target (`checkUrl`) and on the addresses it
 * connects to (the connector's DNS lookup), so DNS rebinding cannot reach a
 * private address either.
 */
export function defaultBuilder(config: ServiceConfig, policy: UrlPolicy): IndexBuilder {
  const dispatcher = policyAgent(policy, config.originConnections);
  const builder = createIndexBuilder({
    poolSize: config.poolSize,
    buildTimeoutMs: config.buildTimeoutSeconds * 1000,
    checkUrl: policy.check,
    // room for two builds' worth of requests in flight at full speed
    http: { dispatcher, maxInFlight: Math.max(256, 2 * config.originConnections) },
  });
  return {
    probe: (url, signal) => builder.probe(url, signal),
    build: (source, opts, signal) => builder.build(source, opts, signal),
    async close() {
      await builder.close();
      // whatever is still in flight (an abandoned probe of a hanging origin) is cut, not awaited
      await dispatcher.destroy();
    },
  };
}

/** Query strings can hold presigned signatures: log `url=` values without theirs. */
function redactRequestUrl(raw: string): string {
  const q = raw.indexOf("?");
  if (q < 0) return raw;
  const params = new URLSearchParams(raw.slice(q + 1));
  const u = params.get("url");
  if (u !== null) params.set("url", redactUrl(u) ?? "");
  return `${raw.slice(0, q)}?${params.toString()}`;
}

interface ValidationIssue {
  instancePath?: string;
  keyword?: string;
  message?: string;
  params?: Record<string, unknown>;
}

const LIMIT_PARAMS = new Set(["chunksThreshold", "splitBytes"]);

/** One readable line per offending parameter (ajv's anyOf errors are noisy). */
function validationMessage(e: Error & { validation: ValidationIssue[]; validationContext?: string }): string {
  const ctx = e.validationContext ?? "request";
  const seen = new Map<string, string>();
  for (const v of e.validation) {
    if (v.keyword === "additionalProperties" && typeof v.params?.additionalProperty === "string") {
      seen.set(`+${v.params.additionalProperty}`, `unknown ${ctx} parameter ${JSON.stringify(v.params.additionalProperty)}`);
      continue;
    }
    const name = (v.instancePath ?? "").replace(/^\//, "");
    if (LIMIT_PARAMS.has(name)) {
      seen.set(name, `${name} must be a non-negative integer or "none"`);
    } else if (!seen.has(name)) {
      seen.set(name, `${name ? `${ctx} parameter ${name}` : ctx} ${v.message ?? "is invalid"}`);
    }
  }
  return seen.size > 0 ? [...seen.values()].join("; ") : e.message;
}

function loggerOptions(config: ServiceConfig): FastifyServerOptions["logger"] {
  return {
    level: config.logLevel,
    serializers: {
      req(req: { method: string; url: string; hostname?: string; ip?: string; headers?: Record<string, unknown> }) {
        return {
          method: req.method,
          url: redactRequestUrl(req.url),
          host: req.hostname,
          remoteAddress: req.ip,
          userAgent: req.headers?.["user-agent"],
        };
      },
    },
  };
}

/** Response headers a browser script may read (beyond the CORS-safelisted ones): dtype/shape of bin answers, codec pipelines of chunks, cache and build state. */
export const CORS_EXPOSED_HEADERS = [
  "accept-ranges",
  "content-disposition",
  "content-range",
  "etag",
  "location",
  "retry-after",
  "x-dtype",
  "x-shape",
  "x-request-id",
  "x-lindi-build",
  "x-lindi-cache",
  "x-lindi-key",
  "x-lindi-chunk-key",
  "x-lindi-chunk-shape",
  "x-lindi-compressor",
  "x-lindi-dtype",
  "x-lindi-fill-value",
  "x-lindi-filter-mask",
  "x-lindi-filters",
];

export async function buildServer(config: ServiceConfig, deps: ServerDeps = {}): Promise<FastifyInstance> {
  const opts: FastifyServerOptions = {
    // a client's x-request-id is kept when it looks like an id; otherwise a new UUID
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers["x-request-id"];
      return typeof given === "string" && /^[\w.:-]{1,128}$/.test(given) ? given : randomUUID();
    },
    exposeHeadRoutes: false,
    bodyLimit: 64 * 1024,
    return503OnClosing: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: "array", useDefaults: true } },
  };
  if (deps.logger) opts.loggerInstance = deps.logger;
  else opts.logger = loggerOptions(config);
  const app = Fastify(opts) as unknown as FastifyInstance;

  const cacheRef: { cache?: TieredCache } = {};
  let service: LindiService | undefined;
  let data: DataContext | undefined;
  const metrics = createMetrics({
    queueDepth: () => service?.builds.queued ?? 0,
    running: () => service?.builds.running ?? 0,
    cache: () => ({
      memoryBytes: cacheRef.cache?.memory.bytes ?? 0,
      memoryEntries: cacheRef.cache?.memory.entries ?? 0,
      diskBytes: cacheRef.cache?.disk.bytes ?? 0,
      diskEntries: cacheRef.cache?.disk.entries ?? 0,
    }),
    data: () => ({
      sliceBytes: data?.sliceBudget.inUse ?? 0,
      sliceWaiting: data?.sliceBudget.waiting ?? 0,
      encodedChunkBytes: data?.chunkCache.size ?? 0,
      decodedChunkBytes: data?.decodedCache.size ?? 0,
      inflateOffloaded: inflateWorkers()?.stats.offloaded ?? 0,
      inflateRecovered: inflateWorkers()?.stats.recovered ?? 0,
      answerBytes: data?.answers.size ?? 0,
      answerHits: data?.answers.stats.hits ?? 0,
      answerMisses: data?.answers.stats.misses ?? 0,
    }),
  });
  const cache = await TieredCache.open({
    dir: config.cacheDir,
    diskMaxBytes: config.cacheMaxBytes,
    memoryMaxBytes: config.memoryCacheBytes,
    onWrite: deps.onCacheWrite,
    onCorrupt: (key, reason) => {
      metrics.cacheCorrupt.inc();
      app.log.warn({ key, reason }, "damaged disk cache entry dropped");
    },
  });
  cacheRef.cache = cache;
  const policy = deps.policy ?? urlPolicyFor(config);
  const cancellation = new BuildCancellation(); // ---- precompute jobs
  service = new LindiService({
    config,
    // precompute jobs can stop the builds they started (src/jobs/cancel.ts)
    builder: cancellation.wrap(deps.builder ?? defaultBuilder(config, policy)),
    cache,
    policy,
    metrics,
    log: app.log,
  });
  app.decorate("lindi", { config, service, cache, metrics } satisfies ServiceContext);
  // ---- data endpoints (/meta, /chunk, /slice): shared HTTP client, chunk cache, parsed indexes ----
  data = new DataContext({ config, service, policy, log: app.log });
  app.decorate("lindiData", data);
  const leaveInflateWorkers = useInflateWorkers(config.inflateThreads);

  // ---- cross-cutting: request ids, metrics, errors ----------------------------
  app.addHook("onRequest", async (req, reply) => {
    reply.header("x-request-id", req.id);
  });
  app.addHook("onResponse", async (req, reply) => {
    const route = req.routeOptions.url ?? "unmatched";
    metrics.httpRequests.inc({ route, method: req.method, status: String(reply.statusCode) });
    metrics.httpSeconds.observe({ route, method: req.method }, reply.elapsedTime / 1000);
  });
  app.addSchema(ErrorResponse);

  app.setErrorHandler((err, req, reply) => {
    let status: number;
    let message: string;
    let headers: Record<string, string> = {};
    const e = err as Error & { statusCode?: number; validation?: unknown; code?: string };
    if (e.validation) {
      status = 400;
      message = validationMessage(e as Error & { validation: ValidationIssue[]; validationContext?: string });
    } else if (e instanceof ServiceError) {
      status = e.statusCode;
      message = e.message;
      headers = e.headers;
    } else if (typeof e.statusCode === "number" && e.statusCode >= 400 && e.statusCode < 600 && e.code?.startsWith("FST_")) {
      status = e.statusCode; // fastify's own (body too large, bad content type, under pressure, ...)
      message = e.message;
      if (status === 503) headers["retry-after"] = "10";
    } else {
      const mapped = toHttpError(err);
      status = mapped.statusCode;
      message = mapped.message;
      headers = mapped.headers;
    }
    if (status >= 500 && status !== 502 && status !== 503 && status !== 504) req.log.error({ err }, "request failed");
    reply.code(status).headers(headers).type("application/json").send(errorBody(status, message));
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).type("application/json").send(errorBody(404, `no route ${req.method} ${req.url.split("?")[0]}`));
  });

  // ---- CORS: browser dashboards read GET/HEAD answers from other origins --------
  if (config.corsOrigins !== null) {
    await app.register(fastifyCors, {
      origin: config.corsOrigins,
      // reads only: a page elsewhere must not start or cancel precompute jobs
      methods: ["GET", "HEAD"],
      exposedHeaders: CORS_EXPOSED_HEADERS,
      maxAge: 24 * 3600,
    });
  }

  // ---- compression of large JSON answers: routes opt in (src/service/data/compression.ts) ----
  await app.register(fastifyCompress, { global: false, ...JSON_COMPRESSION });

  // ---- load shedding (not on /healthz and /metrics) ---------------------------
  await app.register(underPressure, {
    maxEventLoopDelay: config.maxEventLoopDelayMs,
    maxHeapUsedBytes: config.maxHeapUsedBytes,
    maxRssBytes: config.maxRssBytes,
    retryAfter: 10,
    message: "the service is under pressure; retry later",
  });

  // ---- OpenAPI from the route schemas --------------------------------------------
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "lindi-service",
        version: API_VERSION,
        description:
          "Turns the URL of a remote HDF5/NWB file into its LINDI index (one JSON document). " +
          "Errors are JSON `{statusCode, error, message}`.",
      },
      tags: [
        { name: "lindi", description: "LINDI indexes" },
        { name: "data", description: "Metadata, stored chunks and decoded slices of HDF5 datasets, read through their LINDI index" },
        { name: "operations", description: "Health, readiness, metrics, contract" },
      ],
    },
    exposeHeadRoutes: true,
    // @fastify/swagger suffixes HEAD operationIds with "-head"; ours are distinct already
    transform: ({ schema, url, route }) => {
      const id = (schema as { operationId?: string } | undefined)?.operationId;
      if (route.method === "HEAD" && id?.endsWith("-head")) {
        return { schema: { ...schema, operationId: id.slice(0, -"-head".length) } as typeof schema, url };
      }
      return { schema, url };
    },
    refResolver: {
      buildLocalReference: (json, _baseUri, _fragment, i) => String(json.$id ?? json.title ?? `def-${i}`),
    },
  });

  await app.register(lindiRoutes);
  await app.register(buildRoutes);
  await app.register(healthRoutes);
  await app.register(metricsRoutes);
  await app.register(docsRoutes);
  // ---- data endpoints (/meta, /chunk, /slice) ----
  await app.register(metaRoutes);
  await app.register(chunkRoutes);
  await app.register(sliceRoutes);
  // ---- precompute jobs and the mirror: resumes unfinished jobs; stopped (and saved) before the builds are ----
  const jobs = await JobManager.open({ ...jobSettings(config), service, cache, policy, cancellation, log: app.log });
  await app.register(jobRoutes, { jobs });
  await app.register(mirrorRoutes, { root: jobs.mirrorDir });
  app.addHook("preClose", async () => {
    await jobs.close();
  });
  // ---- end precompute jobs ----

  // ---- shutdown: answer waiting requests, stop builds, flush, close the builder --
  app.addHook("preClose", async () => {
    service!.draining.abort();
  });
  app.addHook("onClose", async () => {
    await service!.close();
    await data.close(); // ---- data endpoints
    await leaveInflateWorkers();
  });

  return app;
}
