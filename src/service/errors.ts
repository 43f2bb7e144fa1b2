/**
 * Errors as the service answers them: JSON `{statusCode, error, message}`.
 * `toHttpError` maps whatever a probe or build threw to one of the
 * documented statuses.
 */
import { STATUS_CODES } from "node:http";

/** An error with the HTTP status (and headers) to answer with. */
export class ServiceError extends Error {
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ServiceError";
  }
}

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
}

export function errorBody(statusCode: number, message: string): ErrorBody {
  return { statusCode, error: STATUS_CODES[statusCode] ?? "Error", message };
}

/** Statuses a source or build failure can be answered with (others collapse to 502). */
const SOURCE_STATUSES = new Set([400, 403, 404, 413, 422, 502, 503, 504]);

function name(e: unknown): string | undefined {
  return e && typeof e === "object" && typeof (e as { name?: unknown }).name === "string"
    ? (e as { name: string }).name
    : undefined;
}

function message(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === "object" && typeof (e as { message?: unknown }).message === "string") {
    return (e as { message: string }).message;
  }
  return String(e);
}

/**
 * Maps a thrown value to a status + message. Duck-typed on `statusHint` and
 * `name`, because errors coming back from worker threads may not keep their class.
 */
export function toHttpError(e: unknown): ServiceError {
  if (e instanceof ServiceError) return e;
  const n = name(e);
  if (n === "LindiConversionError") return new ServiceError(422, `not convertible to LINDI: ${message(e)}`, {}, { cause: e });
  if (n === "NotHdf5Error") return new ServiceError(422, message(e), {}, { cause: e });
  if (n === "TimeoutError") return new ServiceError(504, `timed out: ${message(e)}`, {}, { cause: e });
  const hint = e && typeof e === "object" ? (e as { statusHint?: unknown }).statusHint : undefined;
  if (typeof hint === "number") {
    let status = SOURCE_STATUSES.has(hint) ? hint : 502;
    const headers: Record<string, string> = {};
    if (hint === 409) status = 502; // the source changed while it was read: a retry rebuilds
    if (hint === 500 && n === "SourceClosedError") status = 503;
    if (hint === 499) status = 503; // build cancelled (builder closing)
    if (status === 503) headers["retry-after"] = "5";
    return new ServiceError(status, message(e), headers, { cause: e });
  }
  return new ServiceError(500, "internal error", {}, { cause: e });
}

/** A 503 that asks the client to come back later. */
export function unavailable(msg: string, retryAfterSeconds: number): ServiceError {
  return new ServiceError(503, msg, { "retry-after": String(Math.max(1, Math.ceil(retryAfterSeconds))) });
}
