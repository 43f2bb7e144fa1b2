/**
 * GET /slice?url=|lindi=&path=&select=&format=json|bin|npy&dtype=native|safe —
 * decoded values of a selection (readSlice + encodeSlice of src/slices), with
 * the chunk cache and HTTP client shared by all requests.
 */
import type { FastifyInstance } from "fastify";
import type { ServerResponse } from "node:http";
import { Readable } from "node:stream";
import { setImmediate as nextTurn } from "node:timers/promises";
import { elementCount } from "../src/hdf5/dtype.ts";
import { encodeJsonPieces, encodeSlice, readSlice, type EncodedSlice, type SliceFormat, type SliceResult } from "../src/slices/index.ts";
import { jsonAnswer, type AnswerCache, type CachedAnswer } from "../src/service/data/answerCache.ts";
import { sendAnswer } from "../src/service/data/sendAnswer.ts";
import { dataHttpError } from "../src/service/data/errors.ts";
import { BudgetTimeoutError, type ByteBudget } from "../src/service/data/byteBudget.ts";
import { planRead, prefetchPlanned, requestsSent } from "../src/service/data/prefetch.ts";
import { ServiceError } from "../src/service/errors.ts";
import { safeFilename } from "../src/service/data/headers.ts";
import { answerIfNotModified, dataAnswerTag } from "../src/service/data/validators.ts";
import { Binary, dataHeaderDoc, dataNotModified, SliceJson, SliceQuery, type SliceQueryT } from "../src/service/data/schemas.ts";
import { errorResponse } from "../src/service/schemas.ts";
import { dataSourceErrors } from "./meta.ts";

/** JSON answers of more elements than this are streamed in pieces, yielding the event loop between pieces. */
const STREAM_JSON_ELEMENTS = 65_536;

/**
 * The json encoding, one piece per event-loop turn: other requests are served
 * while a large answer is encoded. `whole` gets the complete text when every
 * piece was taken and the text is small enough for the answer cache (a client
 * that leaves stops the generator before).
 */
async function* pacedJson(r: SliceResult, answers: AnswerCache, whole: (body: Buffer) => void): AsyncGenerator<string> {
  let kept: string[] | undefined = [];
  let length = 0;
  for (const piece of encodeJsonPieces(r)) {
    if (kept) {
      length += piece.length; // UTF-16 units: at most the UTF-8 bytes
      if (answers.fits(length)) kept.push(piece);
      else kept = undefined;
    }
    yield piece;
    await nextTurn();
  }
  if (kept) whole(Buffer.from(kept.join(""), "utf8"));
}

/** The answer of an encoded slice, as sent and kept (bin and npy: fixed-size dtypes only, so the headers are plain ASCII). */
function answerOf(r: SliceResult, format: SliceFormat, encoded: EncodedSlice): CachedAnswer {
  const body = Buffer.from(encoded.body.buffer, encoded.body.byteOffset, encoded.body.byteLength);
  if (format === "json") return jsonAnswer(body);
  const headers: Record<string, string> = { "x-dtype": r.dtype, "x-shape": r.shape.join(","), ...encoded.headers };
  if (format === "npy") headers["content-disposition"] = `attachment; filename="${safeFilename(r.path.slice(r.path.lastIndexOf("/") + 1), ".npy")}"`;
  return { body, contentType: "application/octet-stream", headers };
}

/**
 * Waits for `bytes` of the budget of answers in progress; the share goes back
 * when the response closes (sent, failed or abandoned). False when the client
 * left while waiting (its place in the queue is given up); 503 after the
 * configured wait.
 */
async function takeBudgetShare(
  budget: ByteBudget,
  bytes: number,
  res: ServerResponse,
  config: { sliceInflightBytes: number; sliceQueueSeconds: number },
): Promise<boolean> {
  const now = budget.tryAcquire(bytes);
  if (now) {
    res.once("close", now);
    return true;
  }
  const left = new AbortController();
  const onClose = abortWhenClientLeaves(res, left);
  res.once("close", onClose);
  let release: () => void;
  try {
    release = await budget.acquire(bytes, config.sliceQueueSeconds * 1000, left.signal);
  } catch (e) {
    res.off("close", onClose);
    if (left.signal.aborted) return false;
    if (!(e instanceof BudgetTimeoutError)) throw e;
    throw new ServiceError(
      503,
      `too many large /slice answers in progress (LINDI_SLICE_INFLIGHT_BYTES = ${config.sliceInflightBytes} bytes); waited ${config.sliceQueueSeconds} s, retry later`,
      { "retry-after": "5" },
    );
  }
  res.off("close", onClose);
  if (left.signal.aborted) {
    release();
    return false;
  }
  res.once("close", release);
  return true;
}

/** The listener that aborts `ac` when the client goes away before the answer is complete. */
function abortWhenClientLeaves(res: ServerResponse, ac: AbortController): () => void {
  return () => {
    if (!res.writableEnded) ac.abort(new Error("client went away"));
  };
}

export default async function sliceRoutes(app: FastifyInstance): Promise<void> {
  const data = app.lindiData;
  const { config } = data.deps;

  app.get<{ Querystring: SliceQueryT }>(
    "/slice",
    {
      schema: {
        operationId: "getSlice",
        tags: ["data"],
        summary: "Decoded values of a selection of a dataset",
        description:
          "Reads the chunks the selection touches (shared chunk cache; nearby chunks fetched together) and decodes them. " +
          "json: {dtype, shape, data} with nested lists; bin: the raw C-order bytes, dtype and shape in X-Dtype / X-Shape " +
          "(numpy.frombuffer(body, X-Dtype).reshape(X-Shape)); npy: a NumPy .npy file. bin and npy need fixed-size " +
          "elements (406 for strings of variable length, references, compound rows). Answers are bounded by " +
          "LINDI_SLICE_MAX_ELEMENTS and LINDI_SLICE_MAX_BYTES (413 names the limit).",
        querystring: SliceQuery,
        response: {
          200: {
            description: "The values",
            headers: { "X-Dtype": dataHeaderDoc.dtype, "X-Shape": dataHeaderDoc.shape, ETag: dataHeaderDoc.etag },
            content: {
              "application/json": { schema: SliceJson },
              "application/octet-stream": { schema: Binary },
            },
          },
          304: dataNotModified,
          ...dataSourceErrors,
          400: errorResponse("Malformed parameters, a malformed or out-of-bounds selection, or a group path"),
          406: errorResponse("format=bin/npy of values without a fixed size (use format=json)"),
          413: errorResponse("The selection is over LINDI_SLICE_MAX_ELEMENTS / LINDI_SLICE_MAX_BYTES (the message names the limit); or the source is too large"),
          503: errorResponse(
            "The index is still being built, the build queue is full, the service is under pressure, or answers in progress " +
              "hold LINDI_SLICE_INFLIGHT_BYTES and this one waited LINDI_SLICE_QUEUE_SECONDS (see Retry-After)",
          ),
        },
      },
    },
    async (req, reply) => {
      const q = req.query;
      const ix = await data.open(q);
      const tag = dataAnswerTag(ix, "slice", q, req.url);
      if (answerIfNotModified(req, reply, tag, true)) return reply;
      // the same query on the same index version: the answer as encoded before
      const cached = data.answers.get(tag);
      if (cached) return sendAnswer(reply, tag, cached);
      const format = q.format ?? "json";
      let r: SliceResult;
      let encoded: EncodedSlice | undefined;
      // readSlice's limits and dtype mode: the plan sizes the answer as readSlice will
      const limits = { maxElements: config.sliceMaxElements, maxBytes: config.sliceMaxBytes, dtype: q.dtype === "safe" ? ("safe" as const) : ("native" as const) };
      const plan = planRead(ix, q.path, q.select ?? "", limits);
      // answers in progress share a memory budget: wait for this one's share (given back when the answer is sent)
      if (plan && plan.bytes > 0) {
        const released = await takeBudgetShare(data.sliceBudget, plan.bytes, reply.raw, config);
        if (!released) {
          reply.hijack(); // the client left while waiting: nobody to answer
          return;
        }
      }
      // neighbouring chunks in parallel merged requests, decoded as they land; readSlice's
      // setup then runs while they are on the wire
      if (plan && prefetchPlanned(ix, plan)) await requestsSent();
      // a client that leaves stops the chunk reads still to come (one chunk: nothing to stop;
      // making an AbortSignal costs ≈ 8 µs, a tenth of a cached one-chunk read)
      const ac = plan && plan.chunks <= 1 ? undefined : new AbortController();
      const onClose = ac ? abortWhenClientLeaves(reply.raw, ac) : undefined;
      if (onClose) reply.raw.once("close", onClose);
      try {
        r = await readSlice(ix.doc, q.path, plan?.selection ?? q.select ?? "", {
          store: ix.store,
          cache: data.chunkCache,
          decodedCache: data.decodedCache,
          openSource: data.openSource,
          externalCache: data.externalCache,
          ...limits,
          ...(ac ? { signal: ac.signal } : {}),
        });
        if (format !== "json" || elementCount(r.shape) <= STREAM_JSON_ELEMENTS) encoded = encodeSlice(r, format);
      } catch (e) {
        throw dataHttpError(e);
      } finally {
        if (onClose) reply.raw.off("close", onClose);
      }
      if (!encoded) {
        const keep = (body: Buffer) => data.answers.set(tag, jsonAnswer(body));
        return sendAnswer(reply, tag, jsonAnswer(Readable.from(pacedJson(r, data.answers, keep))));
      }
      const answer = answerOf(r, format, encoded);
      data.answers.set(tag, answer);
      return sendAnswer(reply, tag, answer);
    },
  );
}
