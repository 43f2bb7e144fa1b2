/**
 * Request/response schemas of the data endpoints (/meta, /chunk, /slice),
 * TypeBox like src/service/schemas.ts (the OpenAPI document is generated from them).
 */
import { Type, type Static, type TUnsafe } from "@sinclair/typebox";

function StringEnum<T extends string[]>(values: [...T], options: { description?: string; default?: T[number] } = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ type: "string", enum: values, ...options });
}

const Limit = (description: string) => Type.Union([Type.Integer({ minimum: 0 }), Type.Literal("none")], { description });

/** The source of every data request: `url=` or `lindi=` (exactly one), plus the HDF5 path. */
const sourceFields = {
  url: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 8192,
      description:
        "Absolute http(s) URL of an HDF5/NWB file (allow-listed host). Its LINDI index is taken from the cache or built, exactly as GET /lindi does.",
    }),
  ),
  lindi: Type.Optional(
    Type.String({
      minLength: 1,
      maxLength: 8192,
      description:
        "Absolute http(s) URL of an existing .lindi.json or .lindi.tar (allow-listed host; container detected by content). Instead of `url`.",
    }),
  ),
  chunksThreshold: Type.Optional(Limit("url= only: the index variant, as in GET /lindi. Default 1000.")),
  splitBytes: Type.Optional(Limit("url= only: the index variant, as in GET /lindi. Default 20000000.")),
  wait: Type.Optional(
    Type.Integer({
      minimum: 0,
      maximum: 3600,
      description: "url= only: seconds to wait for the index when it has to be built (default 30); still building → 503 + Retry-After",
    }),
  ),
};

const PathField = (description: string) => Type.String({ maxLength: 4096, description });

export const MetaQuery = Type.Object(
  {
    ...sourceFields,
    path: Type.Optional(PathField("HDF5 path of a group or dataset; leading slash optional; soft links followed. Default: the root.")),
    depth: Type.Optional(
      Type.Integer({
        minimum: 1,
        maximum: 32,
        default: 1,
        description: "Levels of children listed. Nodes above the last level are complete (attributes, dataset details, children); the last level holds summaries.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type MetaQueryT = Static<typeof MetaQuery>;

export const ChunkQuery = Type.Object(
  {
    ...sourceFields,
    path: PathField("HDF5 path of a dataset; leading slash optional"),
    key: Type.String({ minLength: 1, maxLength: 256, description: "Chunk grid indices as in refs keys, e.g. `0.3` (`0` for a scalar)" }),
  },
  { additionalProperties: false },
);
export type ChunkQueryT = Static<typeof ChunkQuery>;

export const SliceQuery = Type.Object(
  {
    ...sourceFields,
    path: PathField("HDF5 path of a dataset; leading slash optional"),
    select: Type.Optional(
      Type.String({
        maxLength: 4096,
        description:
          "h5grove selection, one entry per dimension: `i`, `a:b`, `a:b:s`, `:` (negative numbers count from the end; missing trailing dimensions are whole). Empty: everything.",
      }),
    ),
    format: Type.Optional(
      StringEnum(["json", "bin", "npy"], {
        default: "json",
        description: "json: {dtype, shape, data}; bin: raw C-order bytes (X-Dtype, X-Shape headers); npy: a NumPy .npy file",
      }),
    ),
    dtype: Type.Optional(
      StringEnum(["native", "origin", "safe"], {
        default: "native",
        description:
          "native (= origin): the stored dtype. safe: float16 → float32 and big-endian → little-endian, for clients that cannot take them.",
      }),
    ),
  },
  { additionalProperties: false },
);
export type SliceQueryT = Static<typeof SliceQuery>;

const MetaChild = Type.Object(
  {
    name: Type.String(),
    path: Type.String({ description: "Absolute HDF5 path" }),
    kind: StringEnum(["group", "dataset", "link"]),
  },
  { additionalProperties: true, description: "A listed child: summary, or a complete node when within `depth`" },
);

export const MetaNode = Type.Object(
  {
    name: Type.String({ description: "Last path component (`/` for the root)" }),
    path: Type.String({ description: "Absolute HDF5 path (after soft links)" }),
    kind: StringEnum(["group", "dataset", "link"]),
    requestedPath: Type.Optional(Type.String({ description: "The path asked for, when soft links led elsewhere" })),
    target: Type.Optional(Type.String({ description: "link: the soft link's target as stored" })),
    attributes: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description: 'Decoded attributes; object references as {"reference": "<target path>"}; NaN/Infinity as strings',
      }),
    ),
    children: Type.Optional(Type.Array(MetaChild, { description: "group: children sorted by name" })),
    shape: Type.Optional(Type.Array(Type.Integer(), { description: "dataset: shape ([] for scalars)" })),
    dtype: Type.Optional(Type.String({ description: "dataset: numpy dtype string (`<f4`, `|S5`, `|O`, …); compound: numpy descr text" })),
    fields: Type.Optional(
      Type.Array(Type.Object({ name: Type.String(), dtype: Type.String() }, { additionalProperties: false }), {
        description: "compound datasets: fields in order with their numpy dtypes (`|O` for references)",
      }),
    ),
    chunks: Type.Optional(Type.Union([Type.Array(Type.Integer()), Type.Null()], { description: "dataset: chunk shape (Zarr); null for scalars" })),
    filters: Type.Optional(Type.Union([Type.Array(Type.Unknown()), Type.Null()], { description: "dataset: numcodecs filter configs" })),
    compressor: Type.Optional(Type.Unknown({ description: "dataset: numcodecs compressor config or null" })),
    fillValue: Type.Optional(Type.Unknown({ description: "dataset: fill value in Zarr's encoding" })),
    scalar: Type.Optional(Type.Boolean()),
    storage: Type.Optional(
      Type.Object(
        {
          layout: StringEnum(["inline", "chunked", "contiguous", "split", "external", "empty"]),
          chunkGrid: Type.Array(Type.Integer()),
          storedChunks: Type.Integer(),
          storedBytes: Type.Integer(),
          link: Type.Optional(Type.Object({ url: Type.String(), name: Type.String() }, { additionalProperties: false })),
        },
        { additionalProperties: false, description: "dataset: how the index stores the values" },
      ),
    ),
  },
  { title: "MetaNode", additionalProperties: false },
);

export const SliceJson = Type.Object(
  {
    dtype: Type.String({ description: "numpy dtype string of the values (descr text for compound data)" }),
    shape: Type.Array(Type.Integer()),
    fields: Type.Optional(Type.Array(Type.Object({ name: Type.String(), dtype: Type.String() }))),
    data: Type.Unknown({
      description:
        "Nested lists (a scalar: the bare value); NaN/Infinity as strings; integers beyond ±(2^53-1) as decimal strings; references and compound rows as objects",
    }),
  },
  { title: "SliceJson", additionalProperties: false },
);

export const Binary = { type: "string", format: "binary" } as const;

/** Response headers of the data endpoints (documented in OpenAPI). */
export const dataHeaderDoc = {
  dtype: { type: "string", description: "numpy dtype of the bytes (numpy.frombuffer)" },
  shape: { type: "string", description: "Shape, comma-separated (empty for a scalar)" },
  lindiDtype: { type: "string", description: "numpy dtype of the decoded chunk" },
  chunkShape: { type: "string", description: "Chunk shape, comma-separated (edge chunks are stored full size)" },
  filters: { type: "string", description: "JSON: numcodecs filter configs (decode in reverse order), or null" },
  compressor: { type: "string", description: "JSON: numcodecs compressor config, or null" },
  fillValue: { type: "string", description: "JSON: the fill value (Zarr encoding)" },
  contentRange: { type: "string", description: "bytes a-b/total" },
  acceptRanges: { type: "string", description: "bytes" },
  etag: {
    type: "string",
    description: "Names this answer for this version of the source's index (If-None-Match → 304 without reading anything); Cache-Control: no-cache, as a changed source changes the answer",
  },
} as const;

/** The 304 answer of the data endpoints. */
export const dataNotModified = { description: "Not modified (If-None-Match named this answer for the current version of the index)", type: "null" } as const;
