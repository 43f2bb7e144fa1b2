/**
 * Precompute jobs (src/jobs/manager.ts):
 *
 *   POST   /jobs             {urls: [url | {url, path}]} or {dandiset, version?, apiUrl?}; mirror?, concurrency? → 202
 *   GET    /jobs             every job, newest first
 *   GET    /jobs/:id         state, counts, bytes, elapsed/ETA, item errors (?errorsPage=&errorsPerPage=)
 *   GET    /jobs/:id/events  the same as server-sent events while it runs (ends with `event: end`)
 *   DELETE /jobs/:id         cancel
 */
import type { FastifyInstance } from "fastify";
import type { Static } from "@sinclair/typebox";
import type { JobManager, JobEvent } from "../src/jobs/manager.ts";
import { JobEventDoc, JobList, JobListQuery, JobParams, JobRequest, JobStatus, JobStatusQuery, type JobRequestT } from "../src/jobs/schemas.ts";
import { ServiceError } from "../src/service/errors.ts";
import { errorResponse } from "../src/service/schemas.ts";

export interface JobRoutesOptions {
  jobs: JobManager;
  /** Seconds between keep-alive comments on event streams. Default 15. */
  keepAliveSeconds?: number;
}

type Params = Static<typeof JobParams>;

const unknownJob = (id: string) => new ServiceError(404, `unknown job ${id}`);

export default async function jobRoutes(app: FastifyInstance, opts: JobRoutesOptions): Promise<void> {
  const { jobs } = opts;

  app.post<{ Body: JobRequestT }>(
    "/jobs",
    {
      bodyLimit: 32 * 1024 * 1024,
      schema: {
        operationId: "createJob",
        tags: ["jobs"],
        summary: "Start a precompute job",
        description:
          "Builds the indexes of many sources in the background, through the same cache and build slots as GET /lindi " +
          "(a precomputed source is a cache hit for viewers), at most `concurrency` at once. Give `urls` (each optionally " +
          "with its mirror path) or a DANDI listing to expand (`dandiset`, `version`, `apiUrl`: its NWB assets, as " +
          "`{apiUrl}/assets/{asset_id}/download/` → `dandi/dandisets/{dandiset}/assets/{asset_id}/nwb.lindi.json`). " +
          "With `mirror` (default: whether LINDI_MIRROR_DIR is set) every index is also written to the mirror directory " +
          "with an info.json beside it. Items whose output exists (current generator, unchanged source) are skipped. " +
          "Jobs survive restarts.",
        body: JobRequest,
        response: {
          202: { description: "Accepted; follow statusUrl or eventsUrl", headers: { Location: { type: "string", description: "The status URL" } }, content: { "application/json": { schema: JobStatus } } },
          400: errorResponse("Malformed request, URL or mirror path"),
          403: errorResponse("A source host or the listing's API host is not allowed"),
          413: errorResponse("Body too large"),
          503: errorResponse("Shutting down"),
        },
      },
    },
    async (req, reply) => {
      const status = await jobs.create(req.body);
      return reply.code(202).header("location", status.statusUrl).send(status);
    },
  );

  app.get<{ Querystring: Static<typeof JobListQuery> }>(
    "/jobs",
    {
      schema: {
        operationId: "listJobs",
        tags: ["jobs"],
        summary: "Every precompute job",
        querystring: JobListQuery,
        response: { 200: JobList, 400: errorResponse("Malformed query") },
      },
    },
    async (req) => ({ jobs: jobs.list(req.query.state) }),
  );

  app.get<{ Params: Params; Querystring: Static<typeof JobStatusQuery> }>(
    "/jobs/:id",
    {
      schema: {
        operationId: "getJob",
        tags: ["jobs"],
        summary: "State and progress of a job",
        description: "Counts, bytes fetched, elapsed and estimated remaining time, and one page of item errors (with reasons).",
        params: JobParams,
        querystring: JobStatusQuery,
        response: { 200: JobStatus, 400: errorResponse("Malformed id or query"), 404: errorResponse("Unknown job") },
      },
    },
    async (req) => {
      const s = jobs.get(req.params.id, req.query.errorsPage ?? 1, req.query.errorsPerPage ?? 50);
      if (!s) throw unknownJob(req.params.id);
      return s;
    },
  );

  app.get<{ Params: Params }>(
    "/jobs/:id/events",
    {
      schema: {
        operationId: "getJobEvents",
        tags: ["jobs"],
        summary: "Progress of a job as server-sent events",
        description:
          "`text/event-stream`: first the current state, then an `event: progress` per change (an item finished, the " +
          "listing advanced, the state changed), `id:` increasing; the stream ends with `event: end` when the job " +
          "ends (at once for a finished job). The data of each event is JSON (see JobEvent).",
        params: JobParams,
        response: {
          200: { description: "Event stream; the data of every event is a JobEvent (the schema shown)", content: { "text/event-stream": { schema: JobEventDoc } } },
          400: errorResponse("Malformed id"),
          404: errorResponse("Unknown job"),
        },
      },
    },
    async (req, reply) => {
      const id = req.params.id;
      const first = jobs.snapshot(id);
      if (!first) throw unknownJob(id);
      const headers: Record<string, string | number | string[]> = {};
      for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) headers[k] = v as string | number | string[];
      reply.hijack();
      const res = reply.raw;
      res.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-cache, no-transform",
        "x-accel-buffering": "no",
      });
      const send = (ev: JobEvent) => {
        if (!res.destroyed) res.write(`id: ${ev.seq}\nevent: ${ev.type}\ndata: ${JSON.stringify(ev)}\n\n`);
      };
      send(first);
      if (first.type === "end") {
        res.end();
        return;
      }
      let unsubscribe: (() => void) | undefined;
      const keepAlive = setInterval(() => {
        if (!res.destroyed) res.write(": keep-alive\n\n");
      }, (opts.keepAliveSeconds ?? 15) * 1000);
      const stop = () => {
        clearInterval(keepAlive);
        unsubscribe?.();
      };
      unsubscribe = jobs.subscribe(id, (ev) => {
        send(ev);
        if (ev.type === "end") {
          stop();
          res.end();
        }
      });
      res.on("close", stop);
    },
  );

  app.delete<{ Params: Params }>(
    "/jobs/:id",
    {
      schema: {
        operationId: "cancelJob",
        tags: ["jobs"],
        summary: "Cancel a job",
        description:
          "Stops a queued or running job: its running builds are aborted, nothing new starts; finished items (and their " +
          "mirror files) stay. Answers when it has stopped. Cancelling a cancelled job answers the same again.",
        params: JobParams,
        response: { 200: JobStatus, 400: errorResponse("Malformed id"), 404: errorResponse("Unknown job"), 409: errorResponse("The job already finished") },
      },
    },
    async (req) => {
      const s = await jobs.cancel(req.params.id);
      if (!s) throw unknownJob(req.params.id);
      return s;
    },
  );
}
