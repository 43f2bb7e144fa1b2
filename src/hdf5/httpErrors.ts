/**
 * Typed errors raised while reading a remote file over HTTP. Every one carries
 * `statusHint`: the HTTP status the service layer should answer with when the
 * error reaches a client (404 when the source is missing, 403 when it refuses
 * us, 502 when the origin misbehaves, 504 when it is too slow, ...).
 */

/** Strip query strings (presigned signatures, tokens) before a URL goes into a message. */
export function redactUrl(url: string | URL | undefined): string | undefined {
  if (url === undefined) return undefined;
  try {
    const u = new URL(String(url));
    const hadQuery = u.search !== "";
    u.search = "";
    u.hash = "";
    u.username = "";
    u.password = "";
    return u.toString() + (hadQuery ? "?…" : "");
  } catch {
    return "<invalid url>";
  }
}

export interface HttpSourceErrorOptions {
  url?: string | URL;
  cause?: unknown;
  /** Whether repeating the same request may succeed (transport failures, 5xx, short bodies). */
  retryable?: boolean;
  /** Server-requested delay before a retry (Retry-After), in ms. */
  retryAfterMs?: number;
}

export class HttpSourceError extends Error {
  /** HTTP status the service layer should map this error to. */
  readonly statusHint: number;
  /** The URL involved, with its query string redacted. */
  readonly url: string | undefined;
  /** True when the failure is transient and the request may be repeated. */
  readonly retryable: boolean;
  /** Server-requested delay before a retry (from Retry-After), when given. */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, statusHint: number, opts: HttpSourceErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.statusHint = statusHint;
    this.url = redactUrl(opts.url);
    this.retryable = opts.retryable ?? false;
    this.retryAfterMs = opts.retryAfterMs;
  }
}

/** The origin answered 404 (or 410). */
export class SourceNotFoundError extends HttpSourceError {
  constructor(url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> = {}) {
    super(`source not found (404): ${redactUrl(url) ?? ""}`.trim(), 404, { ...opts, url });
  }
}

/** The origin answered 401/403, also after resolving the URL again. */
export class SourceForbiddenError extends HttpSourceError {
  readonly status: number;
  constructor(status: number, url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> = {}) {
    super(`access to source refused (${status}): ${redactUrl(url) ?? ""}`.trim(), 403, { ...opts, url });
    this.status = status;
  }
}

/** The origin ignores Range requests and the file is too large to download whole. */
export class RangeNotSupportedError extends HttpSourceError {
  constructor(url?: string | URL, detail?: string) {
    super(
      `origin does not support Range requests${detail ? ` (${detail})` : ""}: ${redactUrl(url) ?? ""}`.trim(),
      502,
      { url },
    );
  }
}

/** The origin answered with an unexpected status (5xx after retries, 416, other 4xx...). */
export class OriginError extends HttpSourceError {
  readonly status: number;
  constructor(status: number, url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> & { detail?: string } = {}) {
    super(
      `origin answered ${status}${opts.detail ? ` (${opts.detail})` : ""}: ${redactUrl(url) ?? ""}`.trim(),
      502,
      { ...opts, url },
    );
    this.status = status;
  }
}

/** The origin answered a protocol-level nonsense: wrong Content-Range, missing Location, ... */
export class OriginProtocolError extends HttpSourceError {
  constructor(detail: string, url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> = {}) {
    super(`origin protocol error: ${detail}: ${redactUrl(url) ?? ""}`.trim(), 502, { ...opts, url });
  }
}

/** The body ended before the announced length (connection closed early). */
export class TruncatedBodyError extends HttpSourceError {
  readonly expected: number;
  readonly received: number;
  constructor(
    expected: number,
    received: number,
    url?: string | URL,
    opts: Omit<HttpSourceErrorOptions, "url"> & { detail?: string } = {},
  ) {
    super(
      `response body truncated: got ${received} of ${expected} bytes${opts.detail ? ` (${opts.detail})` : ""}: ${redactUrl(url) ?? ""}`.trim(),
      502,
      {
        retryable: true,
        ...opts,
        url,
      },
    );
    this.expected = expected;
    this.received = received;
  }
}

/** No response (headers or full body) within the configured time. */
export class OriginTimeoutError extends HttpSourceError {
  constructor(detail: string, url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> = {}) {
    super(`origin timed out (${detail}): ${redactUrl(url) ?? ""}`.trim(), 504, { retryable: true, ...opts, url });
  }
}

/** The connection failed (reset, refused, DNS, TLS, socket closed). */
export class OriginNetworkError extends HttpSourceError {
  readonly code: string | undefined;
  constructor(code: string | undefined, url?: string | URL, opts: Omit<HttpSourceErrorOptions, "url"> = {}) {
    super(`network error talking to origin${code ? ` (${code})` : ""}: ${redactUrl(url) ?? ""}`.trim(), 502, {
      ...opts,
      url,
    });
    this.code = code;
  }
}

/** More redirects than allowed, a redirect without Location, or a redirect loop. */
export class TooManyRedirectsError extends HttpSourceError {
  constructor(max: number, url?: string | URL) {
    super(`more than ${max} redirects: ${redactUrl(url) ?? ""}`.trim(), 502, { url });
  }
}

/** The file changed while it was being read (ETag or size differ from what was seen at open). */
export class SourceChangedError extends HttpSourceError {
  constructor(detail: string, url?: string | URL) {
    super(`source changed while reading (${detail}): ${redactUrl(url) ?? ""}`.trim(), 409, { url });
  }
}

/** The source was closed; no further reads. */
export class SourceClosedError extends HttpSourceError {
  constructor(url?: string | URL) {
    super(`source is closed: ${redactUrl(url) ?? ""}`.trim(), 500, { url });
  }
}

export function isHttpSourceError(e: unknown): e is HttpSourceError {
  return e instanceof HttpSourceError;
}
