/**
 * Streams a byte range of a remote file from the origin to a client without
 * holding it whole: one Range request through the shared HttpClient (its URL
 * check on the URL and on every redirect target, remembered redirect targets,
 * keep-alive pools, in-flight limit and timeouts), whose body is piped into
 * the returned stream. Failures before the first byte are retried like other
 * reads; a failure after that cuts the stream (the client sees a short body).
 *
 * An origin that ignores Range (200 + whole file) is handled by skipping to
 * the range and stopping after it.
 */
import { PassThrough, Transform, type TransformCallback } from "node:stream";
import { pipeline } from "node:stream/promises";
import {
  HttpSourceError,
  OriginError,
  OriginProtocolError,
  RangeNotSupportedError,
  SourceForbiddenError,
  SourceNotFoundError,
  TooManyRedirectsError,
  type HttpClient,
} from "../../hdf5/httpByteSource.ts";
import type { ExchangeResponse } from "../../hdf5/http/client.ts";
import { header, parseContentRange, redirectTarget, retryAfterMs } from "../../hdf5/http/headers.ts";

/** Passes `take` bytes after skipping `skip`, then ends (the rest of the input is dropped). */
class Window extends Transform {
  private skipLeft: number;
  private takeLeft: number;
  constructor(
    skip: number,
    take: number,
    private readonly count: (n: number) => void,
  ) {
    super();
    this.skipLeft = skip;
    this.takeLeft = take;
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.count(chunk.byteLength);
    let c = chunk;
    if (this.skipLeft > 0) {
      const s = Math.min(this.skipLeft, c.byteLength);
      c = c.subarray(s);
      this.skipLeft -= s;
    }
    if (c.byteLength > 0 && this.takeLeft > 0) {
      const t = c.subarray(0, Math.min(this.takeLeft, c.byteLength));
      this.takeLeft -= t.byteLength;
      this.push(t);
    }
    done();
  }
  override _flush(done: TransformCallback): void {
    if (this.takeLeft > 0) done(new OriginProtocolError(`the body ended ${this.takeLeft} bytes short of the range`));
    else done();
  }
}

type Hop = { kind: "redirect"; to: URL } | { kind: "stream"; stream: PassThrough } | { kind: "done" };

function statusError(res: ExchangeResponse): HttpSourceError {
  const s = res.statusCode;
  if (s === 404 || s === 410) return new SourceNotFoundError(res.url);
  if (s === 401 || s === 403) return new SourceForbiddenError(s, res.url);
  if (s === 429 || s === 408 || s >= 500) return new OriginError(s, res.url, { retryable: true, retryAfterMs: retryAfterMs(res.headers) });
  return new OriginError(s, res.url);
}

/**
 * One request to `target`; resolves when the origin answered: a redirect, or
 * the stream (fed while the exchange runs on).
 */
function exchangeOnce(
  client: HttpClient,
  target: URL,
  original: string,
  hops: number,
  start: number,
  length: number,
  check: ((res: ExchangeResponse) => void) | undefined,
): Promise<Hop> {
  return new Promise<Hop>((resolve, reject) => {
    let out: PassThrough | undefined;
    const end = start + length - 1;
    client
      .exchange(
        target,
        { method: "GET", headers: { ...client.authHeadersFor(target), range: `bytes=${start}-${end}` } },
        async (res): Promise<Hop> => {
          const to = redirectTarget(res);
          if (to) return { kind: "redirect", to };
          let skip: number;
          if (res.statusCode === 206) {
            const cr = parseContentRange(header(res.headers, "content-range"));
            if (!cr || cr.start === undefined || cr.end === undefined || cr.start > start || cr.end < end) {
              throw new OriginProtocolError(`asked bytes ${start}-${end}, got Content-Range ${header(res.headers, "content-range") ?? "(none)"}`, res.url);
            }
            skip = start - cr.start;
          } else if (res.statusCode === 200) {
            // Range ignored: the whole file comes; only small files are read through to the range
            const len = Number(header(res.headers, "content-length") ?? NaN);
            if (!(len <= client.options.smallFileLimit)) {
              throw new RangeNotSupportedError(res.url, `answered 200 to a Range request (${Number.isNaN(len) ? "unknown size" : `${len} bytes`})`);
            }
            skip = start;
          } else {
            throw statusError(res);
          }
          check?.(res);
          if (hops > 0) client.rememberResolved(original, res.url.href);
          out = new PassThrough();
          resolve({ kind: "stream", stream: out });
          await pipeline(res.body, new Window(skip, length, (n) => res.countBytes(n)), out);
          return { kind: "done" };
        },
      )
      .then(
        (hop) => {
          if (!out) resolve(hop);
        },
        (e: unknown) => {
          if (out) out.destroy(e instanceof Error ? e : new Error(String(e)));
          else reject(e);
        },
      );
  });
}

export interface RangeStreamOptions {
  /** Attempts before the first byte (default 3). */
  attempts?: number;
  /** Validates the final response before its body is used (e.g. the ETag); throw to refuse it. */
  check?: (res: ExchangeResponse) => void;
}

/**
 * A stream of bytes [start, start + length) of `url` (length > 0). Rejects
 * with the typed HTTP errors (src/hdf5/httpErrors.ts) when the origin refuses.
 */
export async function openRangeStream(client: HttpClient, url: string, start: number, length: number, opts: RangeStreamOptions = {}): Promise<PassThrough> {
  const original = new URL(url);
  original.hash = "";
  const attempts = Math.max(1, opts.attempts ?? 3);
  for (let attempt = 0; ; attempt++) {
    const remembered = client.lookupResolved(original.href);
    try {
      let target = new URL(remembered ?? original.href);
      await client.checkUrl(target);
      for (let hops = 0; ; hops++) {
        const hop = await exchangeOnce(client, target, original.href, hops, start, length, opts.check);
        if (hop.kind === "stream") return hop.stream;
        if (hop.kind !== "redirect") throw new OriginProtocolError("no body", target);
        if (hops + 1 > client.options.maxRedirects) throw new TooManyRedirectsError(client.options.maxRedirects, original);
        if (hop.to.protocol !== "http:" && hop.to.protocol !== "https:") throw new OriginProtocolError(`redirect to ${hop.to.protocol}`, target);
        hop.to.hash = "";
        await client.checkUrl(hop.to);
        target = hop.to;
      }
    } catch (e) {
      // a remembered redirect target (a presigned URL) may have expired: resolve again from the URL
      const stale = remembered !== undefined && e instanceof SourceForbiddenError;
      const retryable = (e instanceof HttpSourceError && e.retryable) || stale;
      if (!retryable || attempt + 1 >= attempts) throw e;
      client.forgetResolved(original.href);
      await new Promise((r) => setTimeout(r, client.backoffMs(attempt, (e as HttpSourceError).retryAfterMs)));
    }
  }
}
