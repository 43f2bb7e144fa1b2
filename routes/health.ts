/** GET /healthz (the process is alive) and GET /readyz (it can serve: builder up, cache writable, not under pressure). */
import type { FastifyInstance } from "fastify";
import { Health, Ready, type ReadyT } from "../src/service/schemas.ts";

/** Liveness and metrics must answer even under load: exempt from @fastify/under-pressure. */
export const noPressure = { pressureHandler: () => undefined };

export default async function healthRoutes(app: FastifyInstance): Promise<void> {
  const { service, cache } = app.lindi;

  app.get(
    "/healthz",
    {
      schema: {
        operationId: "healthz",
        tags: ["operations"],
        summary: "Liveness: the process answers",
        response: { 200: Health },
      },
      config: noPressure,
    },
    async () => ({ status: "ok" as const }),
  );

  app.get(
    "/readyz",
    {
      schema: {
        operationId: "readyz",
        tags: ["operations"],
        summary: "Readiness: builder up, cache directory writable, not under pressure",
        response: { 200: Ready, 503: Ready },
      },
      config: noPressure,
    },
    async (_req, reply) => {
      const checks = {
        builder: !service.builds.isClosing && !service.draining.signal.aborted,
        cacheWritable: await cache.disk.writable(),
        underPressure: typeof app.isUnderPressure === "function" ? app.isUnderPressure() : false,
      };
      const ok = checks.builder && checks.cacheWritable && !checks.underPressure;
      const body: ReadyT = { status: ok ? "ready" : "not ready", checks };
      return reply.code(ok ? 200 : 503).send(body);
    },
  );
}
