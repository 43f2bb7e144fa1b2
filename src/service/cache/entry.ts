/**
 * A cached index: the JSON plus its gzip and brotli variants (compressed once,
 * when stored; never per request) and what is known about how it was made.
 */
import { createHash } from "node:crypto";
import { promisify } from "node:util";
import zlib from "node:zlib";
import type { BuildOptions } from "../../index/types.ts";

const gzip = promisify(zlib.gzip);
const brotli = promisify(zlib.brotliCompress);

export type Encoding = "identity" | "gzip" | "br";
export const ENCODINGS: readonly Encoding[] = ["identity", "gzip", "br"];

export interface EntryMeta {
  /** Cache key (64 hex chars). */
  key: string;
  /** Normalized source URL. */
  url: string;
  options: BuildOptions;
  /** The source validator that is part of the key. */
  validator: string;
  source: { size: number; etag: string | null; lastModified: string | null };
  /** sha256 of the JSON, 32 hex chars: the base of the HTTP ETags. */
  hash: string;
  /** ISO time of the build. */
  createdAt: string;
  buildMillis: number;
  bytesFetched: number;
  requests: number;
}

export interface CacheEntry {
  meta: EntryMeta;
  identity: Buffer;
  gzip: Buffer;
  br: Buffer;
}

export function entryBytes(e: CacheEntry): number {
  return e.identity.byteLength + e.gzip.byteLength + e.br.byteLength;
}

export function contentHash(data: Uint8Array): string {
  return createHash("sha256").update(data).digest("hex").slice(0, 32);
}

/** Compresses the JSON into the stored variants (zlib's thread pool, not the event loop). */
export async function makeEntry(meta: Omit<EntryMeta, "hash">, json: Uint8Array): Promise<CacheEntry> {
  const identity = Buffer.from(json.buffer, json.byteOffset, json.byteLength);
  const [gz, br] = await Promise.all([
    gzip(identity, { level: 9 }),
    brotli(identity, {
      params: {
        [zlib.constants.BROTLI_PARAM_MODE]: zlib.constants.BROTLI_MODE_TEXT,
        [zlib.constants.BROTLI_PARAM_QUALITY]: 9,
        [zlib.constants.BROTLI_PARAM_SIZE_HINT]: identity.byteLength,
      },
    }),
  ]);
  return { meta: { ...meta, hash: contentHash(identity) }, identity, gzip: gz, br };
}

/** The HTTP ETag of one representation (content-coding is part of a strong validator). */
export function etagFor(hash: string, enc: Encoding): string {
  return enc === "identity" ? `"${hash}"` : `"${hash}-${enc}"`;
}
