/**
 * Errors of the build machinery itself (pool, timeouts, cancellation). Like
 * the HTTP errors of src/hdf5/httpErrors.ts each carries `statusHint`, the
 * HTTP status the service should answer with.
 */
import { redactUrl } from "../hdf5/httpErrors.ts";
import { Hdf5FormatError, Hdf5TruncatedError, Hdf5UnsupportedError } from "../hdf5/layout/index.ts";
import { LindiConversionError } from "../lindi/errors.ts";
import { NotHdf5Error } from "../lindi/indexHdf5.ts";
import type { SerializedError } from "./workerProtocol.ts";

export class IndexBuildError extends Error {
  readonly statusHint: number;
  readonly url: string | undefined;
  constructor(message: string, statusHint: number, url?: string, opts?: { cause?: unknown }) {
    super(message, opts?.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.statusHint = statusHint;
    this.url = redactUrl(url);
  }
}

/** The build ran longer than the configured timeout; its worker was stopped and replaced. */
export class BuildTimeoutError extends IndexBuildError {
  readonly timeoutMs: number;
  constructor(url: string | undefined, timeoutMs: number, phase: "open" | "build" = "build") {
    super(`index build timed out after ${timeoutMs} ms${phase === "open" ? " (opening the source)" : ""}: ${redactUrl(url) ?? ""}`.trim(), 504, url);
    this.timeoutMs = timeoutMs;
  }
}

/** The caller cancelled the build (AbortSignal), or the builder was closed. */
export class BuildAbortedError extends IndexBuildError {
  constructor(url: string | undefined, reason?: unknown) {
    const why = reason instanceof Error ? reason.message : typeof reason === "string" ? reason : undefined;
    super(`index build cancelled${why ? ` (${why})` : ""}: ${redactUrl(url) ?? ""}`.trim(), 499, url, { cause: reason });
  }
}

/** The worker thread died while building (crash, out of memory, exit); it was replaced. */
export class WorkerCrashedError extends IndexBuildError {
  constructor(url: string | undefined, cause: unknown) {
    const detail = cause instanceof Error ? cause.message : String(cause);
    super(`index worker crashed while building ${redactUrl(url) ?? "a file"}: ${detail}`, 500, url, { cause });
  }
}

/** Too many builds are waiting for a worker. */
export class BuildQueueFullError extends IndexBuildError {
  constructor(url?: string) {
    super(`too many index builds waiting: ${redactUrl(url) ?? ""}`.trim(), 503, url);
  }
}

/** A read failed in the worker, and the main thread has no more precise error (should not happen). */
export class RemoteReadError extends IndexBuildError {
  constructor(url: string | undefined, detail: string) {
    super(`reading the source failed (${detail}): ${redactUrl(url) ?? ""}`.trim(), 502, url);
  }
}

/** Rebuilds a worker's error as the class the service knows (structured clone loses classes). */
export function reviveWorkerError(e: SerializedError): Error {
  let out: Error;
  switch (e.name) {
    case "LindiConversionError":
      out = new LindiConversionError(e.objectPath ?? "", e.reason ?? e.message);
      break;
    case "NotHdf5Error":
      out = new NotHdf5Error(e.message);
      break;
    case "Hdf5UnsupportedError":
      out = new Hdf5UnsupportedError(e.message);
      break;
    case "Hdf5TruncatedError":
      out = new Hdf5TruncatedError(e.message);
      break;
    case "Hdf5FormatError":
      out = new Hdf5FormatError(e.message);
      break;
    default:
      out = new Error(e.message);
      if (e.name !== "Error") Object.defineProperty(out, "name", { value: e.name, configurable: true });
  }
  if (e.stack) out.stack = e.stack;
  return out;
}
