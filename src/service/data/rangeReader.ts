/**
 * The range reader of the data endpoints: plain `GET Range` requests through
 * the shared HttpClient, without the size probe (HEAD) an HttpByteSource makes
 * when it opens — the refs say where the bytes are, so a cold read costs one
 * round trip, not two.
 *
 * What the probe would give is kept otherwise: redirects are followed and
 * remembered (openRangeStream), every 206 is checked against the range asked,
 * and the first ETag seen for a URL is remembered: an answer with another
 * ETag is a SourceChangedError (the file changed under its index). `many`
 * merges nearby ranges into one request (gap ≤ 16 KiB, ≤ 8 MiB per request)
 * and, given `onRange`, hands over each range as soon as its bytes are in.
 */
import { LRUCache } from "lru-cache";
import { SourceChangedError, TruncatedBodyError, type HttpClient } from "../../hdf5/httpByteSource.ts";
import { header } from "../../hdf5/http/headers.ts";
import type { RangeReader } from "../../slices/index.ts";
import { openRangeStream } from "./chunkStream.ts";

export interface DirectRangeReader extends RangeReader {
  /** Forgets the ETags seen. */
  clear(): void;
}

export interface DirectRangeReaderOptions {
  /** Ranges closer than this are fetched together. Default 16 KiB. */
  coalesceGap?: number;
  /** Largest merged request. Default 8 MiB. */
  coalesceMax?: number;
  /** Whole-request attempts when a body breaks off. Default 3. */
  attempts?: number;
}

const strip = (etag: string) => etag.trim().replace(/^W\//i, "");

export function directRangeReader(client: HttpClient, opts: DirectRangeReaderOptions = {}): DirectRangeReader {
  const gap = opts.coalesceGap ?? 16 * 1024;
  const max = opts.coalesceMax ?? 8 * 1024 * 1024;
  const attempts = Math.max(1, opts.attempts ?? 3);
  const etags = new LRUCache<string, string>({ max: 10_000, ttl: 10 * 60_000 });

  /** `progress(got, out)`: the first `got` bytes of `out` have arrived (called after each body piece). */
  const readOnce = async (url: string, offset: number, length: number, progress?: (got: number, out: Uint8Array) => void): Promise<Uint8Array> => {
    const key = url.replace(/#.*$/, "");
    const stream = await openRangeStream(client, url, offset, length, {
      check: (res) => {
        const etag = header(res.headers, "etag");
        if (etag === undefined) return;
        const seen = etags.get(key);
        if (seen === undefined) etags.set(key, strip(etag));
        else if (seen !== strip(etag)) {
          etags.delete(key);
          throw new SourceChangedError(`ETag is now ${etag}, was ${seen}`, res.url);
        }
      },
    });
    const out = new Uint8Array(length);
    let got = 0;
    try {
      for await (const c of stream as AsyncIterable<Buffer>) {
        out.set(c, got);
        got += c.byteLength;
        progress?.(got, out);
      }
    } catch (e) {
      throw new TruncatedBodyError(length, got, key, { cause: e });
    }
    if (got !== length) throw new TruncatedBodyError(length, got, key);
    return out;
  };

  const read = async (url: string, offset: number, length: number, progress?: (got: number, out: Uint8Array) => void): Promise<Uint8Array> => {
    if (length === 0) return new Uint8Array(0);
    for (let attempt = 0; ; attempt++) {
      try {
        return await readOnce(url, offset, length, progress);
      } catch (e) {
        // a body that broke off after its first bytes: the whole request again
        if (!(e instanceof TruncatedBodyError) || attempt + 1 >= attempts) throw e;
        await new Promise((r) => setTimeout(r, client.backoffMs(attempt)));
      }
    }
  };

  const reader = ((url: string, offset: number, length: number) => read(url, offset, length)) as DirectRangeReader;
  reader.many = async (url, ranges, _signal, onRange) => {
    const items = ranges.map((r, i) => ({ i, start: r.offset, end: r.offset + r.length })).sort((a, b) => a.start - b.start || a.end - b.end);
    const groups: { start: number; end: number; members: typeof items }[] = [];
    for (const it of items) {
      const g = groups[groups.length - 1];
      if (g && it.start <= g.end + gap && Math.max(g.end, it.end) - g.start <= max) {
        g.end = Math.max(g.end, it.end);
        g.members.push(it);
      } else groups.push({ start: it.start, end: it.end, members: [it] });
    }
    const out: Uint8Array[] = new Array(ranges.length);
    await Promise.all(
      groups.map(async (g) => {
        // with onRange, each member is handed over as soon as its last byte is in
        // (a retried request after a break-off only hands over the ones not yet given)
        const byEnd = onRange ? [...g.members].sort((a, b) => a.end - b.end) : [];
        let next = 0;
        // an error thrown by onRange is the caller's, not a broken body: pass it on after the read
        let thrown: { error: unknown } | undefined;
        const progress = onRange
          ? (got: number, buf: Uint8Array) => {
              for (; next < byEnd.length && byEnd[next]!.end - g.start <= got; next++) {
                const m = byEnd[next]!;
                try {
                  onRange(m.i, buf.subarray(m.start - g.start, m.end - g.start));
                } catch (error) {
                  thrown ??= { error };
                }
              }
            }
          : undefined;
        const bytes = await read(url, g.start, g.end - g.start, progress);
        if (thrown) throw thrown.error;
        for (const m of g.members) out[m.i] = bytes.subarray(m.start - g.start, m.end - g.start);
      }),
    );
    return out;
  };
  reader.clear = () => etags.clear();
  return reader;
}
