/** GET /openapi.json (the contract, generated from the route schemas) and /docs (Swagger UI). */
import type { FastifyInstance } from "fastify";
import fastifySwaggerUi from "@fastify/swagger-ui";
import { noPressure } from "./health.ts";

export default async function docsRoutes(app: FastifyInstance): Promise<void> {
  app.get(
    "/openapi.json",
    {
      schema: {
        operationId: "openapi",
        tags: ["operations"],
        summary: "This OpenAPI 3.1 document (checked in as openapi/openapi.yaml)",
        response: {
          200: {
            description: "OpenAPI document",
            content: { "application/json": { schema: { type: "object", additionalProperties: true } } },
          },
        },
      },
      config: noPressure,
    },
    async (_req, reply) => reply.type("application/json").send(JSON.stringify(app.swagger())),
  );
  await app.register(fastifySwaggerUi, {
    routePrefix: "/docs",
    uiConfig: { docExpansion: "list", deepLinking: false },
    staticCSP: true,
  });
}
