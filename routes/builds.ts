/** GET /builds/:id — the state of a build started by GET /lindi (the id comes from its 202 answer). */
import type { FastifyInstance } from "fastify";
import type { Static } from "@sinclair/typebox";
import { errorBody, ServiceError } from "../src/service/errors.ts";
import { BuildParams, BuildStatus, errorResponse, type BuildStatusT } from "../src/service/schemas.ts";

const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

export default async function buildRoutes(app: FastifyInstance): Promise<void> {
  const { service, cache } = app.lindi;

  app.get<{ Params: Static<typeof BuildParams> }>(
    "/builds/:id",
    {
      schema: {
        operationId: "getBuild",
        tags: ["lindi"],
        summary: "State of a build",
        description:
          "queued / running / succeeded / failed. Finished builds stay visible for an hour; a build whose " +
          "result is in the cache reports succeeded. A failed build is not cached: GET /lindi again retries it.",
        params: BuildParams,
        response: {
          200: BuildStatus,
          400: errorResponse("Malformed id"),
          404: errorResponse("Unknown build"),
        },
      },
    },
    async (req) => {
      const { id } = req.params;
      const job = service.builds.get(id);
      if (job) {
        const end = job.finishedAt ?? Date.now();
        const status: BuildStatusT = {
          id,
          state: job.state,
          url: job.url,
          chunksThreshold: job.options.chunksThreshold,
          splitBytes: job.options.splitBytes,
          source: { size: job.source.size, etag: job.source.etag, lastModified: job.source.lastModified },
          createdAt: iso(job.createdAt),
          startedAt: iso(job.startedAt),
          finishedAt: iso(job.finishedAt),
          elapsedSeconds: (end - (job.startedAt ?? job.createdAt)) / 1000,
          resultUrl: `/lindi?${service.resultQuery(job.url, job.options)}`,
        };
        if (job.error) status.error = errorBody(job.error.statusCode, job.error.message);
        return status;
      }
      const hit = await cache.get(id);
      if (hit) {
        const m = hit.entry.meta;
        const status: BuildStatusT = {
          id,
          state: "succeeded",
          url: m.url,
          chunksThreshold: m.options.chunksThreshold,
          splitBytes: m.options.splitBytes,
          source: m.source,
          finishedAt: m.createdAt,
          elapsedSeconds: m.buildMillis / 1000,
          resultUrl: `/lindi?${service.resultQuery(m.url, m.options)}`,
        };
        return status;
      }
      throw new ServiceError(404, "unknown build");
    },
  );
}
