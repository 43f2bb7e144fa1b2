/**
 * Request/response schemas of every route (TypeBox): fastify validates and
 * serializes with them, and @fastify/swagger turns them into the OpenAPI
 * document (openapi/openapi.yaml is generated from them).
 */
import { Type, type Static, type TSchema, type TUnsafe } from "@sinclair/typebox";

/** A string enum rendered as `{type: string, enum: [...]}` (not an anyOf of constants). */
function StringEnum<T extends string[]>(values: [...T], options: { description?: string } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: values, ...options });
}

export const ErrorResponse = Type.Object(
  {
    statusCode: Type.Integer({ description: "HTTP status" }),
    error: Type.String({ description: "HTTP reason phrase" }),
    message: Type.String({ description: "What went wrong" }),
  },
  { $id: "ErrorResponse", title: "ErrorResponse", additionalProperties: false },
);
export type ErrorResponseT = Static<typeof ErrorResponse>;

/** Same as the CLI's --chunks-threshold / --split-bytes: a non-negative integer or "none". */
const Limit = (description: string) =>
  Type.Union([Type.Integer({ minimum: 0 }), Type.Literal("none")], { description });

export const LindiQuery = Type.Object(
  {
    url: Type.String({
      minLength: 1,
      maxLength: 8192,
      description: "Absolute http(s) URL of the HDF5/NWB file (its host must be allow-listed)",
    }),
    chunksThreshold: Type.Optional(
      Limit('Chunked datasets with more chunks than this become `_EXTERNAL_ARRAY_LINK`; "none" disables. Default 1000.'),
    ),
    splitBytes: Type.Optional(
      Limit('Unfiltered single-chunk numeric datasets larger than this many bytes are split; "none" disables. Default 20000000.'),
    ),
    wait: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3600,
        description:
          "Seconds to wait for a build before answering 202 (default 30; capped by LINDI_MAX_WAIT_SECONDS). Ignored by HEAD.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type LindiQueryT = Static<typeof LindiQuery>;

export const LindiDocument = Type.Object(
  {
    refs: Type.Record(Type.String(), Type.Unknown(), { description: "Zarr v2 keys → inline JSON, base64 text, or [url, offset, length]" }),
    templates: Type.Optional(Type.Record(Type.String(), Type.String())),
    version: Type.Integer(),
    generationMetadata: Type.Optional(Type.Unknown()),
  },
  {
    title: "LindiDocument",
    description: "The LINDI index (`.lindi.json`), bytes as produced by the reference serializer",
    additionalProperties: true,
  },
);

const BuildStateT = StringEnum(["queued", "running", "succeeded", "failed"], {
  description: "queued: waiting for a slot; running; succeeded: GET resultUrl; failed: see error",
});

export const BuildAccepted = Type.Object(
  {
    id: Type.String({ description: "Build id (the cache key)" }),
    state: BuildStateT,
    url: Type.String({ description: "The normalized source URL" }),
    statusUrl: Type.String({ description: "Poll this for the build's state" }),
    resultUrl: Type.String({ description: "GET this once the build succeeded" }),
    retryAfterSeconds: Type.Integer({ description: "Suggested polling interval" }),
  },
  { title: "BuildAccepted", additionalProperties: false },
);
export type BuildAcceptedT = Static<typeof BuildAccepted>;

const NullableInt = Type.Union([Type.Integer(), Type.Null()]);
const NullableString = Type.Union([Type.String(), Type.Null()]);

export const BuildStatus = Type.Object(
  {
    id: Type.String(),
    state: BuildStateT,
    url: Type.String(),
    chunksThreshold: NullableInt,
    splitBytes: NullableInt,
    source: Type.Object(
      { size: Type.Integer(), etag: NullableString, lastModified: NullableString },
      { additionalProperties: false },
    ),
    createdAt: Type.Optional(Type.String({ format: "date-time" })),
    startedAt: Type.Optional(Type.String({ format: "date-time" })),
    finishedAt: Type.Optional(Type.String({ format: "date-time" })),
    elapsedSeconds: Type.Optional(Type.Number()),
    resultUrl: Type.String(),
    error: Type.Optional(Type.Ref(ErrorResponse)),
  },
  { title: "BuildStatus", description: "The build's state", additionalProperties: false },
);
export type BuildStatusT = Static<typeof BuildStatus>;

export const BuildParams = Type.Object(
  { id: Type.String({ pattern: "^[0-9a-f]{64}$", description: "Build id from a 202 answer" }) },
  { additionalProperties: false },
);

export const Health = Type.Object(
  { status: StringEnum(["ok"]) },
  { description: "The process is alive", additionalProperties: false },
);

export const Ready = Type.Object(
  {
    status: StringEnum(["ready", "not ready"]),
    checks: Type.Object(
      {
        builder: Type.Boolean({ description: "The builder is up and the service is not shutting down" }),
        cacheWritable: Type.Boolean({ description: "A file can be created in the cache directory" }),
        underPressure: Type.Boolean({ description: "Event loop / memory limits exceeded" }),
      },
      { additionalProperties: false },
    ),
  },
  { description: "Readiness and its checks (200 ready, 503 not ready)", additionalProperties: false },
);
export type ReadyT = Static<typeof Ready>;

/** A response described by reference to the shared error schema. */
export function errorResponse(description: string): TSchema {
  return Type.Ref(ErrorResponse, { description });
}

/** Response headers documented in OpenAPI (fastify ignores them for serialization). */
export const headerDoc = {
  etag: { type: "string", description: "Strong validator of this representation" },
  vary: { type: "string", description: "Accept-Encoding" },
  contentEncoding: { type: "string", description: "gzip or br when negotiated" },
  retryAfter: { type: "integer", description: "Seconds to wait before retrying" },
  location: { type: "string", description: "The status URL" },
  cache: { type: "string", description: "Where the answer came from: memory, disk, build" },
} as const;
