/**
 * Errors of the data endpoints (/meta, /chunk, /slice) → ServiceError, as
 * src/slices/README.md suggests:
 *
 *   SelectionError, InvalidChunkKeyError, NotADatasetError        400
 *   PathNotFoundError, ChunkNotFoundError (+ X-Lindi-Fill-Value)  404
 *   NotRepresentableError                                         406
 *   SliceTooLargeError (the limit and its variable named)         413
 *   UnsupportedDtypeError                                         422
 *   ChunkDecodeError, ShortReadError, bad refs                   502
 *   a lindi= file that is not LINDI (JSON / tar)                  422
 *   UnsupportedUrlError (a ref the service may not read)          403
 *   HTTP source errors                                            as GET /lindi (a ref's file missing: 502)
 */
import { ServiceError, toHttpError } from "../errors.ts";
import { jsonHeader } from "./headers.ts";

/** Versioned ref URLs carry `#lindi-v=…` (context.ts); never show it. */
export function cleanMessage(m: string): string {
  return m.replace(/#lindi-v=[0-9a-f]+/g, "");
}

function name(e: unknown): string | undefined {
  return e && typeof e === "object" && typeof (e as { name?: unknown }).name === "string" ? (e as { name: string }).name : undefined;
}

function msg(e: unknown): string {
  return cleanMessage(e instanceof Error ? e.message : String(e));
}

const LIMIT_VARS: Record<string, string> = {
  maxElements: "LINDI_SLICE_MAX_ELEMENTS",
  maxBytes: "LINDI_SLICE_MAX_BYTES",
  maxChunks: "chunks per selection",
};

/**
 * Maps what reading a dataset threw. `phase` "read": the index was found, so
 * a 404 from an origin means a file the index points to is gone (502).
 */
export function dataHttpError(e: unknown, phase: "open" | "read" = "read"): ServiceError {
  if (e instanceof ServiceError) return e;
  const n = name(e);
  switch (n) {
    case "SelectionError":
    case "InvalidChunkKeyError":
    case "NotADatasetError":
      return new ServiceError(400, msg(e), {}, { cause: e });
    case "PathNotFoundError":
    case "Hdf5PathError":
      return new ServiceError(404, msg(e), {}, { cause: e });
    case "ChunkNotFoundError": {
      const fill = (e as { fillValue?: unknown }).fillValue;
      return new ServiceError(404, msg(e), { "x-lindi-fill-value": jsonHeader(fill ?? null) }, { cause: e });
    }
    case "NotRepresentableError":
      return new ServiceError(406, msg(e), {}, { cause: e });
    case "SliceTooLargeError": {
      const t = e as { limit: string; requested: number; max: number };
      const what = t.limit === "maxElements" ? "elements" : t.limit === "maxBytes" ? "bytes of decoded values" : "chunks";
      return new ServiceError(
        413,
        `the selection needs ${t.requested} ${what}; the limit is ${t.max} (${LIMIT_VARS[t.limit] ?? t.limit}): select less`,
        {},
        { cause: e },
      );
    }
    case "UnsupportedDtypeError":
      return new ServiceError(422, msg(e), {}, { cause: e });
    case "UnsupportedUrlError":
      return new ServiceError(403, `the index refers to data this service does not read: ${msg(e)}`, {}, { cause: e });
    case "LindiFileError":
    case "LindiTarError":
    case "TarFormatError":
      // opening a lindi= file: its content is not LINDI (as url= answers 422 for a file that is not HDF5)
      if (phase === "open") return new ServiceError(422, `not a LINDI file: ${msg(e)}`, {}, { cause: e });
      return new ServiceError(502, msg(e), {}, { cause: e });
    case "ChunkDecodeError":
    case "ShortReadError":
    case "InvalidRefError":
    case "ChecksumError":
    case "ChunkSizeError":
    case "Hdf5FormatError":
      return new ServiceError(502, msg(e), {}, { cause: e });
  }
  const hint = e && typeof e === "object" ? (e as { statusHint?: unknown }).statusHint : undefined;
  if (typeof hint === "number") {
    const mapped = toHttpError(e);
    if (phase === "read" && mapped.statusCode === 404) {
      return new ServiceError(502, `a file the index refers to is missing: ${msg(e)}`, {}, { cause: e });
    }
    return new ServiceError(mapped.statusCode, cleanMessage(mapped.message), mapped.headers, { cause: e });
  }
  // readers wrap origin/decoder failures in plain errors (external array links): an upstream problem
  if (e instanceof Error && /^external dataset |^[^:]*: _EXTERNAL_ARRAY_LINK|unsupported external link/.test(e.message)) {
    const cause = (e as { cause?: unknown }).cause;
    if (cause && typeof (cause as { statusHint?: unknown }).statusHint === "number") return dataHttpError(cause, phase);
    return new ServiceError(502, msg(e), {}, { cause: e });
  }
  return toHttpError(e);
}
