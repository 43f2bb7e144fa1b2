/**
 * The range reader of the data endpoints: plain `GET Range` requests through
 * the shared HttpClient, without the size probe (HEAD) an HttpByteSource makes
 * when it opens — the refs say where the bytes are, so a cold read costs one
 * round trip, not two.
 *
 * What the probe would give is kept otherwise: redirects are followed and
 * remembered (openRangeStream), every 206 is checked against the range asked,
 * and the ETag a URL's index was built from (else the first one seen) is
 * remembered: an answer with another ETag is a SourceChangedError (the file
 * changed under its index). `many`
 * merges nearby ranges into one request (gap ≤ 16 KiB, ≤ 8 MiB per request),
 * gives each range a buffer of its own and, given `onRange`, hands each over
 * as soon as its bytes are in (rangeSplitter.ts).
 */
import { LRUCache } from "lru-cache";
import { SourceChangedError, TruncatedBodyError, type HttpClient } from "../../hdf5/httpByteSource.ts";
import { header } from "../../hdf5/http/headers.ts";
import { groupNearbyRanges } from "../../hdf5/rangeGroups.ts";
import type { RangeReader } from "../../slices/index.ts";
import { openRangeStream } from "./chunkStream.ts";
import { RangeSplitter } from "./rangeSplitter.ts";

export interface DirectRangeReader extends RangeReader {
  /** The ETag reads of `url` must answer with (the one the index was built from). */
  expectEtag(url: string, etag: string): void;
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

  /** One request; each body piece goes to `sink` with its offset in the range. */
  const readOnce = async (url: string, offset: number, length: number, sink: (piece: Uint8Array, at: number) => void): Promise<void> => {
    // ETags are remembered per URL as the refs give it: with the index version's tag (context.ts),
    // so that the index built after a change does not meet the ETag its predecessor saw
    const key = url.replace(/#.*$/, "");
    const stream = await openRangeStream(client, url, offset, length, {
      check: (res) => {
        const etag = header(res.headers, "etag");
        if (etag === undefined) return;
        const seen = etags.get(url);
        if (seen === undefined) etags.set(url, strip(etag));
        else if (seen !== strip(etag)) {
          etags.delete(url);
          throw new SourceChangedError(`ETag is now ${etag}, was ${seen}`, res.url);
        }
      },
    });
    let got = 0;
    try {
      for await (const c of stream as AsyncIterable<Buffer>) {
        sink(c, got);
        got += c.byteLength;
      }
    } catch (e) {
      throw new TruncatedBodyError(length, got, key, { cause: e });
    }
    if (got !== length) throw new TruncatedBodyError(length, got, key);
  };

  /** readOnce, again from the start when a body breaks off after its first bytes. */
  const readWithRetries = async (url: string, offset: number, length: number, sink: (piece: Uint8Array, at: number) => void): Promise<void> => {
    for (let attempt = 0; ; attempt++) {
      try {
        return await readOnce(url, offset, length, sink);
      } catch (e) {
        if (!(e instanceof TruncatedBodyError) || attempt + 1 >= attempts) throw e;
        await new Promise((r) => setTimeout(r, client.backoffMs(attempt)));
      }
    }
  };

  const reader = (async (url: string, offset: number, length: number) => {
    const out = new Uint8Array(length);
    if (length > 0) await readWithRetries(url, offset, length, (piece, at) => out.set(piece, at));
    return out;
  }) as DirectRangeReader;
  reader.many = async (url, ranges, _signal, onRange) => {
    const groups = groupNearbyRanges(
      ranges.map((r, i) => ({ index: i, start: r.offset, end: r.offset + r.length })),
      gap,
      max,
    );
    const out: Uint8Array[] = new Array(ranges.length);
    await Promise.all(
      groups.map(async (g) => {
        // an error thrown by onRange is the caller's, not a broken body: pass it on after the read
        let thrown: { error: unknown } | undefined;
        const splitter = new RangeSplitter(g.start, g.members, (r, bytes) => {
          try {
            onRange?.(r.index, bytes);
          } catch (error) {
            thrown ??= { error };
          }
        });
        if (g.end > g.start) await readWithRetries(url, g.start, g.end - g.start, (piece, at) => splitter.write(piece, at));
        if (thrown) throw thrown.error;
        g.members.forEach((m, k) => (out[m.index] = splitter.bytes(k)));
      }),
    );
    return out;
  };
  reader.expectEtag = (url, etag) => void etags.set(url, strip(etag));
  reader.clear = () => etags.clear();
  return reader;
}
