/**
 * GET /lindi?url=  — the LINDI index (cache, or build; 202 + status link after `wait`)
 * HEAD /lindi?url= — 200 when cached, 404 when not (never builds)
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { BuildJob } from "../src/service/builds.ts";
import { etagFor, type CacheEntry } from "../src/service/cache/index.ts";
import { ServiceError } from "../src/service/errors.ts";
import { chooseEncoding, matchesIfNoneMatch } from "../src/service/negotiate.ts";
import {
  BuildAccepted,
  errorResponse,
  headerDoc,
  LindiDocument,
  LindiQuery,
  type BuildAcceptedT,
  type LindiQueryT,
} from "../src/service/schemas.ts";

type Req = FastifyRequest<{ Querystring: LindiQueryT }>;

const sourceErrors = {
  400: errorResponse("Malformed URL or options; not http(s)"),
  403: errorResponse("Source host not allowed, or it resolves to a private/loopback/link-local address"),
  404: errorResponse("The source does not exist"),
  413: errorResponse("The source is larger than LINDI_MAX_SOURCE_BYTES"),
  502: errorResponse("The origin failed (error status, broken connection, no Range support, ...)"),
  503: errorResponse("Build queue full, under pressure, or shutting down (see Retry-After)"),
  504: errorResponse("The origin was too slow (probe or build timed out)"),
};

export default async function lindiRoutes(app: FastifyInstance): Promise<void> {
  const { service, config } = app.lindi;

  function sendEntry(req: Req, reply: FastifyReply, entry: CacheEntry, from: string): FastifyReply {
    const enc = chooseEncoding(req.headers["accept-encoding"]);
    const body = entry[enc];
    reply
      .header("etag", etagFor(entry.meta.hash, enc))
      .header("vary", "Accept-Encoding")
      .header("cache-control", "public, no-cache")
      .header("x-lindi-cache", from)
      .header("x-lindi-key", entry.meta.key);
    if (matchesIfNoneMatch(req.headers["if-none-match"], entry.meta.hash)) {
      return reply.code(304).send();
    }
    reply.header("content-type", "application/json");
    if (enc !== "identity") reply.header("content-encoding", enc);
    if (req.method === "HEAD") {
      return reply.code(200).header("content-length", String(body.byteLength)).send();
    }
    return reply.code(200).send(body);
  }

  function accepted(reply: FastifyReply, job: BuildJob): FastifyReply {
    const retryAfterSeconds = Math.min(10, Math.max(1, service.builds.queued + 1));
    const statusUrl = `/builds/${job.id}`;
    const body: BuildAcceptedT = {
      id: job.id,
      state: job.state,
      url: job.url,
      statusUrl,
      resultUrl: `/lindi?${service.resultQuery(job.url, job.options)}`,
      retryAfterSeconds,
    };
    return reply.code(202).header("location", statusUrl).header("retry-after", String(retryAfterSeconds)).send(body);
  }

  app.get<{ Querystring: LindiQueryT }>(
    "/lindi",
    {
      schema: {
        operationId: "getLindi",
        tags: ["lindi"],
        summary: "The LINDI index of a remote HDF5/NWB file",
        description:
          "Answers from the cache (memory, then disk) or builds the index; concurrent requests for the same " +
          "source, options and source version share one build. When the build is still running after `wait` " +
          "seconds the answer is 202 with a status URL; the build continues. The cache key is the normalized " +
          "URL, the options and the source's validator (ETag, else Last-Modified + size): a changed source is " +
          "rebuilt. Responses carry an ETag (If-None-Match → 304) and are sent gzip- or brotli-encoded when " +
          "accepted (variants stored when built).",
        querystring: LindiQuery,
        response: {
          200: {
            description: "The index (`.lindi.json`)",
            headers: {
              ETag: headerDoc.etag,
              Vary: headerDoc.vary,
              "Content-Encoding": headerDoc.contentEncoding,
              "X-Lindi-Cache": headerDoc.cache,
            },
            content: { "application/json": { schema: LindiDocument } },
          },
          202: {
            description: "Still building; poll `statusUrl`, then GET `resultUrl`",
            headers: { Location: headerDoc.location, "Retry-After": headerDoc.retryAfter },
            content: { "application/json": { schema: BuildAccepted } },
          },
          304: { description: "Not modified (If-None-Match matched)", type: "null" },
          ...sourceErrors,
          422: errorResponse("Not HDF5, unreadable, or not convertible to LINDI"),
        },
      },
    },
    async (req, reply) => {
      const r = await service.resolve(req.query);
      const found = await service.lookup(r.key);
      if (found.kind === "hit") return sendEntry(req, reply, found.entry, found.tier);
      const started = service.build(r);
      if ("entry" in started) return sendEntry(req, reply, started.entry, "memory");
      const wait = Math.min(req.query.wait ?? config.defaultWaitSeconds, config.maxWaitSeconds);
      const entry = await service.wait(started.job, wait);
      if (entry) return sendEntry(req, reply, entry, "build");
      return accepted(reply, started.job);
    },
  );

  app.head<{ Querystring: LindiQueryT }>(
    "/lindi",
    {
      schema: {
        operationId: "headLindi",
        tags: ["lindi"],
        summary: "Is the index cached?",
        description:
          "200 with the headers GET would send when the index of the source's current version is cached, " +
          "404 when not. Never starts a build. Finding the key needs the source's validator, so the source " +
          "is probed (one HEAD or 1-byte GET, reused for LINDI_PROBE_TTL_SECONDS); other failures answer " +
          "as GET would.",
        querystring: LindiQuery,
        response: {
          200: {
            description: "Cached",
            headers: { ETag: headerDoc.etag, "Content-Length": { type: "integer" }, "X-Lindi-Cache": headerDoc.cache },
            type: "null",
          },
          304: { description: "Cached and not modified (If-None-Match matched)", type: "null" },
          ...sourceErrors,
          404: errorResponse("Not cached (or the source does not exist)"),
        },
      },
    },
    async (req, reply) => {
      const r = await service.resolve(req.query);
      const found = await service.lookup(r.key);
      if (found.kind === "hit") return sendEntry(req, reply, found.entry, found.tier);
      const job = service.builds.get(r.key);
      if (job && (job.state === "queued" || job.state === "running")) reply.header("x-lindi-build", job.state);
      throw new ServiceError(404, "not cached");
    },
  );
}
