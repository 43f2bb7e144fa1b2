/** Request/response schemas of /jobs and /mirror (TypeBox; they also make the OpenAPI document). */
import { Type, type Static, type TUnsafe } from "@sinclair/typebox";
import { ErrorResponse } from "../service/schemas.ts";

function StringEnum<T extends string[]>(values: [...T], options: { description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: values, ...options });
}

const JobItemInput = Type.Union([
  Type.String({ minLength: 1, maxLength: 8192, description: "Source URL (mirror path: urls/<hash>/index.lindi.json)" }),
  Type.Object(
    {
      url: Type.String({ minLength: 1, maxLength: 8192, description: "Source URL" }),
      path: Type.Optional(
        Type.String({
          minLength: 1,
          maxLength: 1024,
          description: "Mirror path of the index (relative, plain segments, ending in .lindi.json; info.json goes beside it)",
        }),
      ),
    },
    { additionalProperties: false },
  ),
]);

export const JobRequest = Type.Object(
  {
    urls: Type.Optional(Type.Array(JobItemInput, { minItems: 1, maxItems: 100_000, description: "The sources (give this or dandiset)" })),
    dandiset: Type.Optional(Type.String({ description: "DANDI dandiset id (6 digits): its NWB assets become the items" })),
    version: Type.Optional(Type.String({ description: 'Dandiset version (default "draft")' })),
    apiUrl: Type.Optional(
      Type.String({ maxLength: 2048, description: "DANDI API base (default https://api.dandiarchive.org/api); its host must be allowed like a source's" }),
    ),
    mirror: Type.Optional(Type.Boolean({ description: "Write the indexes to the mirror directory too (default: whether LINDI_MIRROR_DIR is set)" })),
    concurrency: Type.Optional(Type.Integer({ minimum: 1, maximum: 1024, description: "Items built at once (capped by LINDI_JOB_CONCURRENCY)" })),
  },
  { title: "JobRequest", additionalProperties: false },
);
export type JobRequestT = Static<typeof JobRequest>;

const JobStateT = StringEnum(["queued", "running", "done", "failed", "cancelled"], {
  description:
    "queued: waiting for another job; running; done: every item processed (see counts.failed); failed: the job itself " +
    "could not go on (e.g. the listing failed); cancelled",
});

const ItemStateT = StringEnum(["pending", "running", "done", "skipped", "failed"]);

const ItemErrorT = Type.Object(
  {
    index: Type.Integer({ description: "Position of the item in the job" }),
    url: Type.String(),
    path: Type.String({ description: "Mirror path" }),
    statusCode: Type.Integer({ description: "What GET /lindi would answer for it" }),
    message: Type.String(),
  },
  { additionalProperties: false },
);

const Counts = Type.Object(
  {
    total: Type.Integer(),
    pending: Type.Integer(),
    running: Type.Integer(),
    done: Type.Integer({ description: "Built, or taken from the cache" }),
    skipped: Type.Integer({ description: "Output already there (current generator, unchanged source)" }),
    failed: Type.Integer(),
  },
  { additionalProperties: false },
);

const statusProperties = {
  id: Type.String(),
  state: JobStateT,
  createdAt: Type.String({ format: "date-time" }),
  startedAt: Type.Optional(Type.String({ format: "date-time" })),
  finishedAt: Type.Optional(Type.String({ format: "date-time" })),
  source: Type.Object(
    {
      kind: StringEnum(["urls", "dandiset"]),
      dandiset: Type.Optional(Type.String()),
      version: Type.Optional(Type.String()),
      apiUrl: Type.Optional(Type.String()),
    },
    { additionalProperties: false },
  ),
  mirror: Type.Boolean(),
  concurrency: Type.Integer(),
  counts: Counts,
  listing: Type.Optional(
    Type.Object(
      {
        pages: Type.Integer(),
        assets: Type.Integer({ description: "Assets seen (any kind)" }),
        count: Type.Union([Type.Integer(), Type.Null()], { description: "Assets the API announced" }),
        nwb: Type.Integer({ description: "NWB assets kept" }),
      },
      { additionalProperties: false, description: "DANDI listing progress" },
    ),
  ),
  bytesFetched: Type.Integer({ description: "Bytes read from origins by this job's builds" }),
  elapsedSeconds: Type.Number({ description: "Run time so far (across restarts)" }),
  etaSeconds: Type.Union([Type.Number(), Type.Null()], { description: "Estimated remaining time (null: not known yet)" }),
  itemsPerSecond: Type.Number(),
  bytesPerSecond: Type.Number(),
  error: Type.Optional(Type.Ref(ErrorResponse)),
  errors: Type.Object(
    {
      total: Type.Integer({ description: "Failed items" }),
      page: Type.Optional(Type.Integer()),
      perPage: Type.Optional(Type.Integer()),
      items: Type.Optional(Type.Array(ItemErrorT)),
    },
    { additionalProperties: false },
  ),
  seq: Type.Integer({ description: "Progress changes so far (the event id of GET /jobs/{id}/events)" }),
  resumed: Type.Integer({ description: "Restarts the job was resumed after" }),
  statusUrl: Type.String(),
  eventsUrl: Type.String(),
  mirrorUrl: Type.Optional(Type.String({ description: "Mirror jobs: outputs are served at mirrorUrl + item path" })),
};

export const JobStatus = Type.Object(statusProperties, { title: "JobStatus", additionalProperties: false });
export type JobStatusT = Static<typeof JobStatus>;

export const JobList = Type.Object(
  { jobs: Type.Array(JobStatus, { description: "Newest first; errors.items left out" }) },
  { title: "JobList", additionalProperties: false },
);

export const JobEventDoc = Type.Object(
  {
    type: StringEnum(["progress", "end"]),
    seq: Type.Integer(),
    status: JobStatus,
    item: Type.Optional(
      Type.Object(
        {
          index: Type.Integer(),
          url: Type.String(),
          path: Type.String(),
          state: ItemStateT,
          outcome: Type.Optional(StringEnum(["built", "cached"])),
          statusCode: Type.Optional(Type.Integer()),
          message: Type.Optional(Type.String()),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { title: "JobEvent", description: "data of one server-sent event (event: progress | end; id: seq)" },
);

export const JobParams = Type.Object(
  { id: Type.String({ pattern: "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", description: "Job id from POST /jobs" }) },
  { additionalProperties: false },
);

export const JobStatusQuery = Type.Object(
  {
    errorsPage: Type.Optional(Type.Integer({ minimum: 1, default: 1, description: "Page of item errors (from 1)" })),
    errorsPerPage: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 50, description: "Item errors per page" })),
  },
  { additionalProperties: false },
);

export const JobListQuery = Type.Object(
  { state: Type.Optional(JobStateT) },
  { additionalProperties: false },
);
