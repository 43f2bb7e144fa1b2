/**
 * Validators of the data answers (/meta, /chunk, /slice). An answer is a
 * function of the index version (`OpenedIndex.id`: a changed source is another
 * version) and the query, so its ETag is known before anything is read, and
 * If-None-Match answers 304 without reading or decoding a chunk. Clients must
 * revalidate (Cache-Control: no-cache): the same URL names a newer version
 * once the source changes.
 */
import { createHash } from "node:crypto";
import { LRUCache } from "lru-cache";
import type { FastifyReply, FastifyRequest } from "fastify";
import { matchesIfNoneMatch } from "../negotiate.ts";
import type { OpenedIndex } from "./context.ts";

/** Bump when an endpoint's output changes for the same index and query: old ETags stop matching. */
const DATA_ANSWER_VERSION = 1;

/** Tags computed lately, by index version + route + request URL (a dashboard repeats its requests). */
const recentTags = new LRUCache<string, string>({ max: 4096 });

/**
 * The opaque part of the ETag of `route`'s answer to `query` (parsed from
 * `requestUrl`) over `ix`.
 */
export function dataAnswerTag(ix: OpenedIndex, route: string, query: object, requestUrl: string): string {
  const memo = `${ix.id}\n${route}\n${requestUrl}`;
  let tag = recentTags.get(memo);
  if (tag !== undefined) return tag;
  const params = Object.entries(query)
    .filter(([, v]) => v !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  tag = createHash("sha256")
    .update(JSON.stringify([DATA_ANSWER_VERSION, ix.id, route, params]))
    .digest("base64url")
    .slice(0, 32);
  recentTags.set(memo, tag);
  return tag;
}

/**
 * The headers of a successful answer named by `tag` (errors get neither).
 * `weak`: for answers that may be sent gzipped (the same tag then names
 * equivalent, not byte-identical, representations).
 */
export function validatorHeaders(tag: string, weak = false): Record<string, string> {
  return { etag: `${weak ? "W/" : ""}"${tag}"`, "cache-control": "public, no-cache" };
}

/** When the request's If-None-Match names the answer: 304 sent, true returned (the caller stops). */
export function answerIfNotModified(req: FastifyRequest, reply: FastifyReply, tag: string, weak = false): boolean {
  if (!matchesIfNoneMatch(req.headers["if-none-match"], tag)) return false;
  void reply.code(304).headers(validatorHeaders(tag, weak)).send();
  return true;
}
