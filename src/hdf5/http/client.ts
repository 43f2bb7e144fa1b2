import { Agent, type Dispatcher } from "undici";
import { LRUCache } from "lru-cache";
import {
  HttpSourceError,
  OriginNetworkError,
  OriginTimeoutError,
  SourceClosedError,
} from "../httpErrors.ts";
import { Semaphore } from "./semaphore.ts";
import { authHeadersFor, DEFAULT_DANDI_API_HOSTS, isDandiAssetDownloadUrl, presignedExpiry } from "./auth.ts";

export type UrlCheck = (url: URL) => void | Promise<void>;

export interface HttpClientOptions {
  /** Keep-alive connections per origin (one undici Pool per origin). Default 128 (a build's range requests are latency-bound). */
  maxConnectionsPerOrigin?: number;
  /** Requests in flight over all origins (a semaphore; waiting for it is not timed). Default 256. */
  maxInFlight?: number;
  /** Time to wait for response headers, ms. Default 20 000. */
  headersTimeoutMs?: number;
  /** Longest silence between two body chunks, ms. Default 20 000. */
  bodyTimeoutMs?: number;
  /** Whole exchange (headers + body) of one attempt, ms. Default 120 000. */
  requestTimeoutMs?: number;
  /** TCP/TLS connect timeout, ms. Default 10 000. */
  connectTimeoutMs?: number;
  /** Idle keep-alive sockets are closed after this, ms. Default 30 000. */
  keepAliveTimeoutMs?: number;
  /** Retries after the first attempt (transport errors, timeouts, 5xx, 429, short bodies). Default 4. */
  retries?: number;
  /** First back-off delay, ms; doubles per retry, with jitter. Default 100. */
  retryBaseDelayMs?: number;
  /** Cap of one back-off delay (also caps Retry-After), ms. Default 5 000. */
  retryMaxDelayMs?: number;
  /** Redirect hops followed per request. Default 5. */
  maxRedirects?: number;
  /** How long a redirect target is reused for a URL, ms. Default 5 minutes. */
  resolvedUrlTtlMs?: number;
  /** The same for DANDI asset download URLs (their target is presigned for 1 hour). Default 50 minutes. */
  dandiResolvedUrlTtlMs?: number;
  /** DANDI API key, sent as `Authorization: token <key>` only to `authHosts`. */
  authToken?: string;
  /** Hosts (https only) or origins (`http://host:port`) that get the API key. Default: DANDI API hosts. */
  authHosts?: readonly string[];
  /** Called for the first URL and every redirect target; throw to refuse (e.g. private addresses). */
  checkUrl?: UrlCheck;
  /** Bodies of 200 answers to Range requests up to this size are kept whole. Default 8 MiB. */
  smallFileLimit?: number;
  /** Sent as User-Agent. */
  userAgent?: string;
  /** Random source in [0,1) for back-off jitter (tests). */
  random?: () => number;
  /** Use this dispatcher instead of creating an undici Agent (not closed by `close()`). */
  dispatcher?: Dispatcher;
}

/** What was fetched. Shared counters live on the client; each source keeps its own too. */
export interface HttpCounters {
  /** HTTP requests sent (every attempt and every redirect hop). */
  requests: number;
  /** Response body bytes received. */
  bytes: number;
  /** Attempts repeated after a transient failure. */
  retries: number;
  /** Redirect hops followed. */
  redirects: number;
}

export function newCounters(): HttpCounters {
  return { requests: 0, bytes: 0, retries: 0, redirects: 0 };
}

export interface ExchangeInit {
  method: "GET" | "HEAD";
  headers?: Record<string, string>;
}

/** One response as handed to an exchange handler. */
export interface ExchangeResponse {
  url: URL;
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData["body"];
  /** Call with the size of every body chunk consumed (feeds the byte counters). */
  countBytes(n: number): void;
}

type ResolvedEntry = { url: string };

const RETRYABLE_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "ECONNABORTED",
  "EPIPE",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "ENETDOWN",
  "EAI_AGAIN",
  "UND_ERR_SOCKET",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
  "UND_ERR_INFO",
]);
const TIMEOUT_CODES = new Set([
  "ETIMEDOUT",
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
]);

function errorCode(e: unknown): string | undefined {
  let cur: unknown = e;
  for (let depth = 0; depth < 4 && cur && typeof cur === "object"; depth++) {
    const code = (cur as { code?: unknown }).code;
    if (typeof code === "string") return code;
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * HTTP plumbing shared by all remote sources of a process: keep-alive pools
 * per origin, a global in-flight limit, timeouts, retries with back-off, a
 * cache of redirect targets, and counters.
 */
export class HttpClient {
  readonly options: Readonly<
    Required<Omit<HttpClientOptions, "authToken" | "checkUrl" | "userAgent" | "random" | "dispatcher">>
  > & Pick<HttpClientOptions, "authToken" | "checkUrl" | "userAgent">;
  /** Totals over every request this client made. */
  readonly stats: HttpCounters = newCounters();

  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly semaphore: Semaphore;
  private readonly random: () => number;
  private readonly resolved: LRUCache<string, ResolvedEntry>;
  private closed = false;

  constructor(opts: HttpClientOptions = {}) {
    this.options = {
      maxConnectionsPerOrigin: opts.maxConnectionsPerOrigin ?? 128,
      maxInFlight: opts.maxInFlight ?? 256,
      headersTimeoutMs: opts.headersTimeoutMs ?? 20_000,
      bodyTimeoutMs: opts.bodyTimeoutMs ?? 20_000,
      requestTimeoutMs: opts.requestTimeoutMs ?? 120_000,
      connectTimeoutMs: opts.connectTimeoutMs ?? 10_000,
      keepAliveTimeoutMs: opts.keepAliveTimeoutMs ?? 30_000,
      retries: opts.retries ?? 4,
      retryBaseDelayMs: opts.retryBaseDelayMs ?? 100,
      retryMaxDelayMs: opts.retryMaxDelayMs ?? 5_000,
      maxRedirects: opts.maxRedirects ?? 5,
      resolvedUrlTtlMs: opts.resolvedUrlTtlMs ?? 5 * 60_000,
      dandiResolvedUrlTtlMs: opts.dandiResolvedUrlTtlMs ?? 50 * 60_000,
      authHosts: opts.authHosts ?? DEFAULT_DANDI_API_HOSTS,
      smallFileLimit: opts.smallFileLimit ?? 8 * 1024 * 1024,
      authToken: opts.authToken,
      checkUrl: opts.checkUrl,
      userAgent: opts.userAgent,
    };
    this.random = opts.random ?? Math.random;
    this.semaphore = new Semaphore(this.options.maxInFlight);
    this.resolved = new LRUCache<string, ResolvedEntry>({ max: 10_000, ttlAutopurge: false });
    if (opts.dispatcher) {
      this.dispatcher = opts.dispatcher;
      this.ownsDispatcher = false;
    } else {
      this.dispatcher = new Agent({
        connections: this.options.maxConnectionsPerOrigin,
        pipelining: 1,
        keepAliveTimeout: this.options.keepAliveTimeoutMs,
        keepAliveMaxTimeout: Math.max(this.options.keepAliveTimeoutMs, 60_000),
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
        connect: { timeout: this.options.connectTimeoutMs },
      });
      this.ownsDispatcher = true;
    }
  }

  /** Requests holding an in-flight slot right now, and callers waiting for one. */
  get load(): { inFlight: number; waiting: number } {
    return { inFlight: this.semaphore.inUse, waiting: this.semaphore.waiting };
  }

  /** Authorization header for `url` (DANDI API hosts only). */
  authHeadersFor(url: URL, token: string | undefined = this.options.authToken): Record<string, string> {
    return authHeadersFor(url, token, this.options.authHosts);
  }

  /** Runs the configured URL check (no-op when none). */
  async checkUrl(url: URL, check: UrlCheck | undefined = this.options.checkUrl): Promise<void> {
    if (check) await check(url);
  }

  // ---- resolved-URL cache ----------------------------------------------

  /** The remembered redirect target of `original`, if still fresh. */
  lookupResolved(original: string): string | undefined {
    return this.resolved.get(original)?.url;
  }

  /** Remember that `original` redirects to `target` (TTL by URL kind, capped by a presigned expiry). */
  rememberResolved(original: string, target: string, ttlMs?: number): void {
    if (original === target) return;
    let ttl =
      ttlMs ??
      (isDandiAssetDownloadUrl(original, [...DEFAULT_DANDI_API_HOSTS, ...this.options.authHosts])
        ? this.options.dandiResolvedUrlTtlMs
        : this.options.resolvedUrlTtlMs);
    const expiry = presignedExpiry(target);
    if (expiry !== undefined) ttl = Math.min(ttl, expiry - Date.now() - 60_000);
    if (!(ttl > 0)) return;
    this.resolved.set(original, { url: target }, { ttl });
  }

  forgetResolved(original: string): void {
    this.resolved.delete(original);
  }

  // ---- one request --------------------------------------------------------

  /**
   * One HTTP request (no redirects, no retries): waits for an in-flight slot,
   * sends, and hands the response to `handle`, which must consume (or ignore)
   * the body. The whole exchange, handler included, is bounded by
   * `requestTimeoutMs`. Transport failures and timeouts are thrown as
   * `OriginNetworkError` / `OriginTimeoutError` (retryable).
   */
  async exchange<T>(
    url: URL,
    init: ExchangeInit,
    handle: (res: ExchangeResponse) => Promise<T>,
    counters?: HttpCounters,
  ): Promise<T> {
    if (this.closed) throw new SourceClosedError(url);
    const release = await this.semaphore.acquire();
    const ac = new AbortController();
    let timedOut: OriginTimeoutError | undefined;
    const abortWith = (err: OriginTimeoutError) => {
      if (timedOut) return;
      timedOut = err;
      ac.abort(err);
    };
    // undici's own timeouts tick at ~1 s resolution; these native timers are exact
    const timer = setTimeout(
      () => abortWith(new OriginTimeoutError(`no complete answer within ${this.options.requestTimeoutMs} ms`, url)),
      this.options.requestTimeoutMs,
    );
    const headersTimer = setTimeout(
      () => abortWith(new OriginTimeoutError(`no response headers within ${this.options.headersTimeoutMs} ms`, url)),
      this.options.headersTimeoutMs,
    );
    let body: Dispatcher.ResponseData["body"] | undefined;
    let handled = false;
    try {
      const headers: Record<string, string> = {
        "accept-encoding": "identity",
        ...(this.options.userAgent ? { "user-agent": this.options.userAgent } : {}),
        ...init.headers,
      };
      this.stats.requests++;
      if (counters) counters.requests++;
      const res = await this.dispatcher.request({
        origin: url.origin,
        path: url.pathname + url.search,
        method: init.method,
        headers,
        signal: ac.signal,
        headersTimeout: this.options.headersTimeoutMs,
        bodyTimeout: this.options.bodyTimeoutMs,
      });
      clearTimeout(headersTimer);
      body = res.body;
      const result = await handle({
        url,
        statusCode: res.statusCode,
        headers: res.headers,
        body: res.body,
        countBytes: (n) => {
          this.stats.bytes += n;
          if (counters) counters.bytes += n;
        },
      });
      handled = true;
      return result;
    } catch (e) {
      throw this.classify(e, url, timedOut);
    } finally {
      clearTimeout(headersTimer);
      if (body && !body.destroyed) {
        body.on("error", () => undefined); // destroying an unread body emits an abort error
        if (handled && !timedOut) {
          // an unread rest (a redirect's or error's short body): drain it to keep the
          // socket, still bounded by the request timer; large rests are cut
          await body.dump({ limit: 64 * 1024, signal: ac.signal }).catch(() => undefined);
        } else {
          body.destroy();
        }
      }
      clearTimeout(timer);
      release();
    }
  }

  /** Maps undici/Node errors to typed errors; typed errors pass through. */
  classify(e: unknown, url: URL, timedOut?: OriginTimeoutError): unknown {
    if (timedOut) return timedOut;
    if (e instanceof HttpSourceError) return e;
    const code = errorCode(e);
    if (code === undefined) return e; // not a transport error (e.g. a bug, or a checkUrl refusal)
    if (TIMEOUT_CODES.has(code)) return new OriginTimeoutError(code, url, { cause: e });
    if (RETRYABLE_CODES.has(code)) return new OriginNetworkError(code, url, { cause: e, retryable: true });
    if (code === "UND_ERR_DESTROYED" || code === "UND_ERR_CLOSED") return new SourceClosedError(url);
    if (code === "UND_ERR_ABORTED" || code === "ABORT_ERR") return new OriginNetworkError(code, url, { cause: e });
    if (
      code.startsWith("UND_ERR_") ||
      code.startsWith("HPE_") ||
      code.includes("CERT") ||
      (/^E[A-Z0-9_]+$/.test(code) && !code.startsWith("ERR_"))
    ) {
      return new OriginNetworkError(code, url, { cause: e });
    }
    return e;
  }

  // ---- retries ---------------------------------------------------------------

  /** Back-off before retry number `retry` (0-based): exponential, "equal jitter", capped. */
  backoffMs(retry: number, retryAfterMs?: number): number {
    const { retryBaseDelayMs: base, retryMaxDelayMs: max } = this.options;
    const cap = Math.min(max, base * 2 ** retry);
    const jittered = cap / 2 + (this.random() * cap) / 2;
    return retryAfterMs !== undefined ? Math.min(max, Math.max(jittered, retryAfterMs)) : jittered;
  }

  /**
   * Runs `attempt` until it succeeds, fails with a non-retryable error, or
   * `retries` repeats are used up (then the last error is thrown).
   */
  async withRetries<T>(
    attempt: (n: number) => Promise<T>,
    opts: { retries?: number; counters?: HttpCounters } = {},
  ): Promise<T> {
    const max = opts.retries ?? this.options.retries;
    for (let n = 0; ; n++) {
      try {
        return await attempt(n);
      } catch (e) {
        const retryable = e instanceof HttpSourceError && e.retryable;
        if (!retryable || n >= max || this.closed) throw e;
        this.stats.retries++;
        if (opts.counters) opts.counters.retries++;
        await sleep(this.backoffMs(n, e.retryAfterMs));
      }
    }
  }

  /** Closes the pools (open sockets are destroyed); later requests fail. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsDispatcher) await this.dispatcher.destroy().catch(() => undefined);
  }
}
