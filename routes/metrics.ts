/** GET /metrics — Prometheus text format. */
import type { FastifyInstance } from "fastify";
import { noPressure } from "./health.ts";

export default async function metricsRoutes(app: FastifyInstance): Promise<void> {
  const { registry } = app.lindi.metrics;
  app.get(
    "/metrics",
    {
      schema: {
        operationId: "metrics",
        tags: ["operations"],
        summary: "Prometheus metrics",
        description:
          "Builds by outcome (lindi_builds_total), build seconds (lindi_build_duration_seconds), cache hits by " +
          "tier (lindi_cache_hits_total), bytes fetched from origins (lindi_origin_bytes_fetched_total), queue " +
          "depth (lindi_build_queue_depth), and process metrics.",
        response: {
          200: {
            description: "Prometheus exposition format",
            content: { "text/plain": { schema: { type: "string" } } },
          },
        },
      },
      config: noPressure,
    },
    async (_req, reply) => {
      const text = await registry.metrics();
      return reply.type(registry.contentType).send(text);
    },
  );
}
