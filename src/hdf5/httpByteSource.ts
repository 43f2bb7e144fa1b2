import type { ByteSource } from "./byteSource.ts";
import { groupNearbyRanges } from "./rangeGroups.ts";
import {
  HttpSourceError,
  OriginError,
  OriginProtocolError,
  RangeNotSupportedError,
  SourceChangedError,
  SourceClosedError,
  SourceForbiddenError,
  SourceNotFoundError,
  TooManyRedirectsError,
  TruncatedBodyError,
} from "./httpErrors.ts";
import { HttpClient, newCounters, type ExchangeResponse, type HttpCounters, type UrlCheck } from "./http/client.ts";
import { header, intHeader, parseContentRange, REDIRECT_STATUSES, redirectTarget, retryAfterMs } from "./http/headers.ts";

export { HttpClient, newCounters } from "./http/client.ts";
export type { HttpClientOptions, HttpCounters, UrlCheck } from "./http/client.ts";
export { authHeadersFor, isAuthHost, isDandiAssetDownloadUrl, DEFAULT_DANDI_API_HOSTS } from "./http/auth.ts";
export * from "./httpErrors.ts";

export interface OpenHttpSourceOptions {
  /** Overrides the client's URL check for this source (first URL and every redirect target). */
  checkUrl?: UrlCheck;
  /** Overrides the client's DANDI API key for this source. */
  authToken?: string;
  /** Overrides the client's small-file limit (whole body kept when Range is ignored). */
  smallFileLimit?: number;
  /** Fail reads with `SourceChangedError` when the origin's ETag differs from the one seen at open. Default true. */
  checkEtag?: boolean;
  /** Reads merged by `readMany` when the gap between them is at most this many bytes. Default 16 KiB. */
  coalesceGap?: number;
  /** Largest request `readMany` builds by merging. Default 8 MiB. */
  coalesceMax?: number;
}

export interface ReadRange {
  offset: number;
  length: number;
}


type HopResult<T> = { kind: "redirect"; to: URL } | { kind: "forbidden"; status: number } | { kind: "done"; value: T };

interface FetchOptions {
  method: "GET" | "HEAD";
  range?: string;
  /** Retries per hop; default the client's. */
  retries?: number;
  /** Re-resolve from the original URL once when a redirect target answers 401/403. */
  reResolve: boolean;
}

interface ProbeResult {
  size: number;
  etag: string | undefined;
  lastModified: string | undefined;
  whole?: Uint8Array;
}

/** ETags compared by their opaque part (a weak and a strong form of the same tag are equal). */
function sameEtag(a: string, b: string): boolean {
  const strip = (s: string) => s.trim().replace(/^W\//i, "");
  return strip(a) === strip(b);
}

/**
 * A remote file read with HTTP Range requests. Create with `openHttpSource`.
 * Reads are retried on transient failures, identical concurrent reads share
 * one request, and redirect targets are remembered (per client) for a TTL.
 */
export class HttpByteSource implements ByteSource {
  /** Counters for this source only (the client keeps totals). */
  readonly stats: HttpCounters = newCounters();
  readonly url: string;

  private _size = 0;
  private _etag: string | undefined;
  private _lastModified: string | undefined;
  private whole: Uint8Array | undefined;
  private closed = false;
  private readonly inflight = new Map<string, Promise<Uint8Array>>();
  private readonly checkUrlFn: UrlCheck | undefined;
  private readonly authToken: string | undefined;
  private readonly smallFileLimit: number;
  private readonly checkEtag: boolean;
  private readonly coalesceGap: number;
  private readonly coalesceMax: number;

  private constructor(
    url: URL,
    readonly client: HttpClient,
    opts: OpenHttpSourceOptions,
  ) {
    this.url = url.href;
    this.checkUrlFn = opts.checkUrl ?? client.options.checkUrl;
    this.authToken = opts.authToken ?? client.options.authToken;
    this.smallFileLimit = opts.smallFileLimit ?? client.options.smallFileLimit;
    this.checkEtag = opts.checkEtag ?? true;
    this.coalesceGap = opts.coalesceGap ?? 16 * 1024;
    this.coalesceMax = opts.coalesceMax ?? 8 * 1024 * 1024;
  }

  /** @internal use `openHttpSource` */
  static async open(url: string | URL, client: HttpClient, opts: OpenHttpSourceOptions = {}): Promise<HttpByteSource> {
    let u: URL;
    try {
      u = new URL(String(url));
    } catch (e) {
      throw new OriginProtocolError("invalid URL", undefined, { cause: e });
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new OriginProtocolError(`unsupported protocol ${u.protocol}`, u);
    }
    u.hash = "";
    const src = new HttpByteSource(u, client, opts);
    await client.checkUrl(u, src.checkUrlFn);
    const probe = await src.probe();
    src._size = probe.size;
    src._etag = probe.etag;
    src._lastModified = probe.lastModified;
    src.whole = probe.whole;
    return src;
  }

  get size(): number {
    return this._size;
  }
  get etag(): string | undefined {
    return this._etag;
  }
  get lastModified(): string | undefined {
    return this._lastModified;
  }
  /** Where reads currently go (the remembered redirect target, or the URL itself). */
  get resolvedUrl(): string {
    return this.client.lookupResolved(this.url) ?? this.url;
  }
  /** True when the origin ignored Range and the (small) file is held in memory. */
  get isBuffered(): boolean {
    return this.whole !== undefined;
  }

  // ---- reading ---------------------------------------------------------------

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (this.closed) throw new SourceClosedError(this.url);
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
      throw new RangeError(`invalid read: offset ${offset}, length ${length}`);
    }
    const end = Math.min(offset + length, this._size);
    if (end <= offset) return new Uint8Array(0);
    if (this.whole) return this.whole.subarray(offset, end);
    const key = `${offset}-${end}`;
    let p = this.inflight.get(key);
    if (!p) {
      p = this.fetchRange(offset, end).finally(() => this.inflight.delete(key));
      this.inflight.set(key, p);
    }
    return p;
  }

  /**
   * Several ranges at once: ranges close to each other (gap ≤ `coalesceGap`)
   * are fetched with one request. Results are in the order asked, clipped at EOF.
   */
  async readMany(ranges: readonly ReadRange[]): Promise<Uint8Array[]> {
    const items = ranges.map((r, i) => {
      if (!Number.isSafeInteger(r.offset) || r.offset < 0 || !Number.isSafeInteger(r.length) || r.length < 0) {
        throw new RangeError(`invalid read: offset ${r.offset}, length ${r.length}`);
      }
      return { i, start: r.offset, end: Math.max(r.offset, Math.min(r.offset + r.length, this._size)) };
    });
    const out: Uint8Array[] = new Array(ranges.length);
    const live = items.filter((it) => it.end > it.start);
    for (const it of items) if (it.end <= it.start) out[it.i] = new Uint8Array(0);
    const groups = groupNearbyRanges(live, this.coalesceGap, this.coalesceMax);
    await Promise.all(
      groups.map(async (g) => {
        const bytes = await this.read(g.start, g.end - g.start);
        for (const m of g.members) out[m.i] = bytes.subarray(m.start - g.start, m.end - g.start);
      }),
    );
    return out;
  }

  /** No further reads. The shared client stays open. */
  async close(): Promise<void> {
    this.closed = true;
    this.whole = undefined;
  }

  // ---- internals ---------------------------------------------------------------

  private fetchRange(start: number, end: number): Promise<Uint8Array> {
    return this.fetch({ method: "GET", range: `bytes=${start}-${end - 1}`, reResolve: true }, async (res) => {
      const s = res.statusCode;
      if (s === 206) {
        const cr = this.checkPartial(res);
        if (cr.start > start || cr.end < end - 1) {
          throw new OriginProtocolError(
            `asked bytes ${start}-${end - 1}, got Content-Range ${header(res.headers, "content-range")}`,
            res.url,
          );
        }
        const bytes = await readBody(res, cr.end - cr.start + 1);
        return cr.start === start && cr.end === end - 1 ? bytes : bytes.subarray(start - cr.start, end - cr.start);
      }
      if (s === 200) {
        this.checkEtagOf(res);
        if (start === 0 && end === this._size) return readBody(res, this._size);
        if (this._size > this.smallFileLimit) {
          throw new RangeNotSupportedError(res.url, `answered 200 to a Range request for a ${this._size}-byte file`);
        }
        const whole = await readBody(res, this._size);
        this.whole = whole;
        return whole.subarray(start, end);
      }
      if (s === 416) {
        const total = parseContentRange(header(res.headers, "content-range"))?.total;
        if (total !== undefined && total !== this._size) {
          throw new SourceChangedError(`size is now ${total}, was ${this._size}`, res.url);
        }
      }
      throw this.statusError(res);
    });
  }

  /** Size, ETag and Last-Modified: HEAD, then `GET bytes=0-0` when HEAD fails or says too little. */
  private async probe(): Promise<ProbeResult> {
    try {
      const viaHead = await this.fetch({ method: "HEAD", reResolve: false, retries: 0 }, async (res) => {
        const len = intHeader(res.headers, "content-length");
        if (res.statusCode >= 200 && res.statusCode < 300 && res.statusCode !== 206 && len !== undefined) {
          return {
            size: len,
            etag: header(res.headers, "etag"),
            lastModified: header(res.headers, "last-modified"),
          } satisfies ProbeResult;
        }
        return undefined;
      });
      if (viaHead) return viaHead;
    } catch (e) {
      // HEAD refused or failed (presigned S3 URLs refuse HEAD): fall back to GET,
      // except for decisions that GET would meet again
      if (!(e instanceof HttpSourceError) || e instanceof TooManyRedirectsError || e instanceof SourceClosedError) {
        throw e;
      }
    }
    return this.fetch({ method: "GET", range: "bytes=0-0", reResolve: true }, async (res) => {
      const etag = header(res.headers, "etag");
      const lastModified = header(res.headers, "last-modified");
      if (res.statusCode === 206) {
        const cr = parseContentRange(header(res.headers, "content-range"));
        if (!cr || cr.start === undefined || cr.end === undefined) {
          throw new OriginProtocolError(`bad Content-Range ${header(res.headers, "content-range")}`, res.url);
        }
        if (cr.total === undefined) throw new OriginProtocolError("origin does not tell the file size", res.url);
        await readBody(res, cr.end - cr.start + 1);
        return { size: cr.total, etag, lastModified } satisfies ProbeResult;
      }
      if (res.statusCode === 200) {
        const len = intHeader(res.headers, "content-length");
        if (len !== undefined && len > this.smallFileLimit) {
          throw new RangeNotSupportedError(res.url, `answered 200 to a Range request for a ${len}-byte file`);
        }
        const whole =
          len !== undefined ? await readBody(res, len) : await readBodyUpTo(res, this.smallFileLimit, res.url);
        return { size: whole.byteLength, etag, lastModified, whole } satisfies ProbeResult;
      }
      if (res.statusCode === 416) {
        const total = parseContentRange(header(res.headers, "content-range"))?.total;
        if (total === 0) return { size: 0, etag, lastModified } satisfies ProbeResult;
      }
      throw this.statusError(res);
    });
  }

  /** Validates a 206 answer against what was seen at open; returns its range. */
  private checkPartial(res: ExchangeResponse): { start: number; end: number } {
    const raw = header(res.headers, "content-range");
    const cr = parseContentRange(raw);
    if (!cr || cr.start === undefined || cr.end === undefined) {
      throw new OriginProtocolError(`206 with bad Content-Range ${raw ?? "(none)"}`, res.url);
    }
    if (cr.total !== undefined && cr.total !== this._size) {
      throw new SourceChangedError(`size is now ${cr.total}, was ${this._size}`, res.url);
    }
    this.checkEtagOf(res);
    const len = intHeader(res.headers, "content-length");
    if (len !== undefined && len !== cr.end - cr.start + 1) {
      throw new OriginProtocolError(`Content-Length ${len} does not match Content-Range ${raw}`, res.url);
    }
    return { start: cr.start, end: cr.end };
  }

  private checkEtagOf(res: ExchangeResponse): void {
    if (!this.checkEtag || this._etag === undefined) return;
    const etag = header(res.headers, "etag");
    if (etag !== undefined && !sameEtag(etag, this._etag)) {
      throw new SourceChangedError(`ETag is now ${etag}, was ${this._etag}`, res.url);
    }
  }

  private statusError(res: ExchangeResponse): HttpSourceError {
    const s = res.statusCode;
    if (s === 404 || s === 410) return new SourceNotFoundError(res.url);
    if (s === 401 || s === 403) return new SourceForbiddenError(s, res.url);
    if (s === 412) return new SourceChangedError("precondition failed (412)", res.url);
    if (s === 429 || s === 408 || s >= 500) {
      return new OriginError(s, res.url, { retryable: true, retryAfterMs: retryAfterMs(res.headers) });
    }
    if (REDIRECT_STATUSES.has(s)) return new OriginProtocolError(`redirect ${s} without Location`, res.url);
    return new OriginError(s, res.url);
  }

  /**
   * One logical request: starts at the remembered redirect target (or the
   * URL), follows redirects by hand (checking each target, sending the API key
   * only to API hosts), retries each hop, and re-resolves from the original
   * URL once when a redirect target answers 401/403.
   */
  private async fetch<T>(opts: FetchOptions, onFinal: (res: ExchangeResponse) => Promise<T>): Promise<T> {
    const client = this.client;
    const original = this.url;
    for (let pass = 0; ; pass++) {
      if (this.closed) throw new SourceClosedError(original);
      const cached = pass === 0 ? client.lookupResolved(original) : undefined;
      let url = new URL(cached ?? original);
      let hops = 0;
      for (;;) {
        const canReResolve = opts.reResolve && pass === 0 && url.href !== original;
        const headers: Record<string, string> = { ...client.authHeadersFor(url, this.authToken) };
        if (opts.range) headers.range = opts.range;
        const hopUrl = url;
        const r: HopResult<T> = await client.withRetries(
          () =>
            client.exchange(
              hopUrl,
              { method: opts.method, headers },
              async (res): Promise<HopResult<T>> => {
                const to = redirectTarget(res);
                if (to) return { kind: "redirect", to };
                if (hops > 0) client.rememberResolved(original, res.url.href);
                if ((res.statusCode === 401 || res.statusCode === 403) && canReResolve) {
                  return { kind: "forbidden", status: res.statusCode };
                }
                return { kind: "done", value: await onFinal(res) };
              },
              this.stats,
            ),
          { retries: opts.retries, counters: this.stats },
        );
        if (r.kind === "done") return r.value;
        if (r.kind === "forbidden") {
          client.forgetResolved(original);
          break; // next pass: from the original URL
        }
        hops++;
        this.stats.redirects++;
        client.stats.redirects++;
        if (hops > client.options.maxRedirects) throw new TooManyRedirectsError(client.options.maxRedirects, original);
        if (r.to.protocol !== "http:" && r.to.protocol !== "https:") {
          throw new OriginProtocolError(`redirect to unsupported protocol ${r.to.protocol}`, url);
        }
        r.to.hash = "";
        await client.checkUrl(r.to, this.checkUrlFn);
        url = r.to;
      }
    }
  }
}

const BODY_CUT_CODES = new Set([
  "UND_ERR_SOCKET",
  "ECONNRESET",
  "EPIPE",
  "ECONNABORTED",
  "UND_ERR_RES_CONTENT_LENGTH_MISMATCH",
]);

/** Reads exactly `expected` bytes of body; short → retryable `TruncatedBodyError`, long → protocol error. */
async function readBody(res: ExchangeResponse, expected: number): Promise<Uint8Array> {
  const buf = new Uint8Array(expected);
  let got = 0;
  try {
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      res.countBytes(chunk.byteLength);
      if (got + chunk.byteLength > expected) {
        throw new OriginProtocolError(`body longer than the ${expected} bytes announced`, res.url);
      }
      buf.set(chunk, got);
      got += chunk.byteLength;
    }
  } catch (e) {
    // the connection dropped mid-body (reset, or closed early): say so, retryably
    const code = (e as { code?: unknown } | null)?.code;
    if (!(e instanceof HttpSourceError) && typeof code === "string" && BODY_CUT_CODES.has(code)) {
      throw new TruncatedBodyError(expected, got, res.url, { cause: e, detail: code });
    }
    throw e;
  }
  if (got < expected) throw new TruncatedBodyError(expected, got, res.url);
  return buf;
}

/** Reads a body of unknown length, refusing (RangeNotSupported) beyond `limit` bytes. */
async function readBodyUpTo(res: ExchangeResponse, limit: number, url: URL): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let got = 0;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
    res.countBytes(chunk.byteLength);
    got += chunk.byteLength;
    if (got > limit) throw new RangeNotSupportedError(url, `answered 200 with a body over ${limit} bytes`);
    chunks.push(chunk);
  }
  const out = new Uint8Array(got);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * Opens a remote file: checks the URL, follows redirects, and learns size,
 * ETag and Last-Modified (HEAD, or `GET Range: bytes=0-0` when HEAD is refused).
 */
export function openHttpSource(
  url: string | URL,
  client: HttpClient,
  opts: OpenHttpSourceOptions = {},
): Promise<HttpByteSource> {
  return HttpByteSource.open(url, client, opts);
}

const HDF5_SIGNATURE = [0x89, 0x48, 0x44, 0x46, 0x0d, 0x0a, 0x1a, 0x0a];

function hasSignature(b: Uint8Array): boolean {
  if (b.byteLength < 8) return false;
  for (let i = 0; i < 8; i++) if (b[i] !== HDF5_SIGNATURE[i]) return false;
  return true;
}

/**
 * Offset of the HDF5 superblock signature (`\x89HDF\r\n\x1a\n`): 0, 512,
 * 1024, 2048, … up to the file size; null when there is none. Checks 0 first,
 * then the other candidates concurrently (8 bytes each).
 */
export async function findHdf5Signature(source: ByteSource): Promise<number | null> {
  if (source.size < 8) return null;
  if (hasSignature(await source.read(0, 8))) return 0;
  const offsets: number[] = [];
  for (let off = 512; off + 8 <= source.size; off *= 2) offsets.push(off);
  const found = await Promise.all(offsets.map(async (off) => hasSignature(await source.read(off, 8))));
  const i = found.indexOf(true);
  return i < 0 ? null : offsets[i]!;
}

/** True when the source carries the HDF5 signature at 0 or a power of two ≥ 512. */
export async function looksLikeHdf5(source: ByteSource): Promise<boolean> {
  return (await findHdf5Signature(source)) !== null;
}
