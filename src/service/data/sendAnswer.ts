/**
 * Sending a data answer (/slice, /meta), fresh or from the answer cache: its
 * validators (a weak ETag: JSON may go out gzipped or not), its headers, and
 * the body — JSON through reply.compress (gzipped when large and accepted,
 * compression.ts), bin/npy as they are.
 */
import type { FastifyReply } from "fastify";
import type { Readable } from "node:stream";
import type { CachedAnswer } from "./answerCache.ts";
import { validatorHeaders } from "./validators.ts";

/** A kept answer, or one whose body is still being produced (a streamed JSON answer). */
export type OutgoingAnswer = Omit<CachedAnswer, "body"> & { body: Buffer | Readable };

export function sendAnswer(reply: FastifyReply, tag: string, a: OutgoingAnswer): FastifyReply {
  reply.code(200).headers(validatorHeaders(tag, true)).headers(a.headers).type(a.contentType);
  if (a.contentType === "application/json") {
    reply.compress(a.body);
    return reply;
  }
  return reply.send(a.body);
}
