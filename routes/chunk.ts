/**
 * GET /chunk?url=|lindi=&path=&key= — the stored (encoded) bytes of one chunk
 * as the index records them: inline chunks from the index, byte-range chunks
 * streamed from the origin (piped, never buffered whole). `Range` is honoured
 * (206 / 416). Headers say how to decode: X-Lindi-Filters, X-Lindi-Compressor
 * (JSON), X-Lindi-Dtype, X-Lindi-Chunk-Shape, X-Lindi-Fill-Value. A chunk that
 * was never written is 404 with X-Lindi-Fill-Value.
 */
import type { FastifyInstance } from "fastify";
import { locateChunk, UnsupportedUrlError, type ChunkInfo } from "../src/slices/index.ts";
import { openRangeStream } from "../src/service/data/chunkStream.ts";
import { dataHttpError } from "../src/service/data/errors.ts";
import { jsonHeader, parseRangeHeader } from "../src/service/data/headers.ts";
import { Binary, ChunkQuery, dataHeaderDoc, dataNotModified, type ChunkQueryT } from "../src/service/data/schemas.ts";
import { answerIfNotModified, dataAnswerTag, validatorHeaders } from "../src/service/data/validators.ts";
import { ServiceError } from "../src/service/errors.ts";
import { errorResponse } from "../src/service/schemas.ts";
import { dataSourceErrors } from "./meta.ts";

function decodeHeaders(c: ChunkInfo): Record<string, string> {
  const h: Record<string, string> = {
    "x-lindi-dtype": c.dtype,
    "x-lindi-chunk-shape": c.chunks.join(","),
    "x-lindi-filters": jsonHeader(c.filters),
    "x-lindi-compressor": jsonHeader(c.compressor),
    "x-lindi-fill-value": jsonHeader(c.fillValue),
    "x-lindi-chunk-key": c.key,
  };
  if (c.filterMask !== undefined) h["x-lindi-filter-mask"] = String(c.filterMask);
  return h;
}

export default async function chunkRoutes(app: FastifyInstance): Promise<void> {
  const data = app.lindiData;
  const chunkHeaders = {
    "X-Lindi-Dtype": dataHeaderDoc.lindiDtype,
    "X-Lindi-Chunk-Shape": dataHeaderDoc.chunkShape,
    "X-Lindi-Filters": dataHeaderDoc.filters,
    "X-Lindi-Compressor": dataHeaderDoc.compressor,
    "X-Lindi-Fill-Value": dataHeaderDoc.fillValue,
    "Accept-Ranges": dataHeaderDoc.acceptRanges,
    ETag: dataHeaderDoc.etag,
  };

  app.get<{ Querystring: ChunkQueryT }>(
    "/chunk",
    {
      schema: {
        operationId: "getChunk",
        tags: ["data"],
        summary: "The stored (encoded) bytes of one chunk",
        description:
          "Bytes exactly as the index records them (before decoding): inline chunks from the index, byte-range chunks " +
          "streamed from the origin. Decode with the numcodecs configs in X-Lindi-Filters (reverse order) and " +
          "X-Lindi-Compressor, then read X-Lindi-Dtype in C order with X-Lindi-Chunk-Shape. `Range: bytes=…` (one range) " +
          "is honoured. For _EXTERNAL_ARRAY_LINK datasets the chunk comes from the HDF5 file's chunk index " +
          "(X-Lindi-Filter-Mask: filters skipped for this chunk).",
        querystring: ChunkQuery,
        response: {
          200: { description: "The whole chunk", headers: chunkHeaders, content: { "application/octet-stream": { schema: Binary } } },
          304: dataNotModified,
          206: {
            description: "The requested range of the chunk",
            headers: { ...chunkHeaders, "Content-Range": dataHeaderDoc.contentRange },
            content: { "application/octet-stream": { schema: Binary } },
          },
          ...dataSourceErrors,
          400: errorResponse("Malformed parameters, a chunk key outside the grid, or a group path"),
          404: errorResponse("The source or path does not exist, or the chunk was never written (X-Lindi-Fill-Value: readers use the fill value)"),
          416: errorResponse("The Range is outside the chunk (Content-Range: bytes */<size>)"),
        },
      },
    },
    async (req, reply) => {
      const ix = await data.open(req.query);
      let c: ChunkInfo;
      try {
        c = await locateChunk(ix.doc, req.query.path, req.query.key, { store: ix.store, openSource: data.openSource, externalCache: data.externalCache });
      } catch (e) {
        throw dataHttpError(e);
      }
      const size = c.location.kind === "inline" ? c.location.bytes.byteLength : c.location.length;
      // (If-None-Match is evaluated before Range: a cached whole chunk needs no part of it)
      const tag = dataAnswerTag(ix, "chunk", { path: req.query.path, key: req.query.key }, req.url);
      if (answerIfNotModified(req, reply, tag)) return reply;
      reply.headers(decodeHeaders(c)).header("accept-ranges", "bytes");
      const range = parseRangeHeader(req.headers.range, size);
      if (range === "unsatisfiable") {
        throw new ServiceError(416, `the range ${req.headers.range} is outside the chunk (${size} bytes)`, { "content-range": `bytes */${size}` });
      }
      const start = range ? range.start : 0;
      const length = range ? range.end - range.start + 1 : size;
      let body: Buffer | NodeJS.ReadableStream;
      if (c.location.kind === "inline") body = Buffer.from(c.location.bytes.buffer, c.location.bytes.byteOffset + start, length);
      else if (length === 0) body = Buffer.alloc(0);
      else {
        try {
          // only http(s) is read: refs to local files (or other schemes) are refused
          if (!/^https?:\/\//i.test(c.location.url)) throw new UnsupportedUrlError(c.location.url, "not an http(s) URL");
          body = await openRangeStream(data.client, c.location.url, c.location.offset + start, length);
        } catch (e) {
          throw dataHttpError(e);
        }
      }
      reply.code(range ? 206 : 200).headers(validatorHeaders(tag)).type("application/octet-stream").header("content-length", String(length));
      if (range) reply.header("content-range", `bytes ${range.start}-${range.end}/${size}`);
      return reply.send(body);
    },
  );
}
