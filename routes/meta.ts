/**
 * GET /meta?url=|lindi=&path=&depth= — tree, attributes and types of an HDF5
 * path, from the LINDI index (no chunk refs). See src/service/data/meta.ts.
 */
import type { FastifyInstance } from "fastify";
import { dataHttpError } from "../src/service/data/errors.ts";
import { describePath } from "../src/service/data/meta.ts";
import { dataHeaderDoc, dataNotModified, MetaNode, MetaQuery, type MetaQueryT } from "../src/service/data/schemas.ts";
import { jsonAnswer } from "../src/service/data/answerCache.ts";
import { sendAnswer } from "../src/service/data/sendAnswer.ts";
import { answerIfNotModified, dataAnswerTag } from "../src/service/data/validators.ts";
import { errorResponse } from "../src/service/schemas.ts";

/** Most nodes one /meta answer may hold. */
export const MAX_META_NODES = 100_000;

export const dataSourceErrors = {
  400: errorResponse("Malformed parameters: not exactly one of url/lindi, bad URL, bad path or selection"),
  403: errorResponse("Source host not allowed or private; or the index refers to data this service does not read"),
  404: errorResponse("The source, or the HDF5 path in it, does not exist"),
  413: errorResponse("Too large: the source (LINDI_MAX_SOURCE_BYTES), or the answer (the limit is named)"),
  422: errorResponse("Not HDF5 or not convertible to LINDI (url=), not a LINDI file (lindi=), or an unsupported dtype"),
  502: errorResponse("The origin failed, or the index points at bytes that are missing or corrupt"),
  503: errorResponse("The index is still being built, the build queue is full, or the service is under pressure (see Retry-After)"),
  504: errorResponse("The origin was too slow"),
};

export default async function metaRoutes(app: FastifyInstance): Promise<void> {
  const data = app.lindiData;

  app.get<{ Querystring: MetaQueryT }>(
    "/meta",
    {
      schema: {
        operationId: "getMeta",
        tags: ["data"],
        summary: "Tree, attributes and types of an HDF5 path",
        description:
          "For a group: its attributes and children (name, kind; datasets add shape, dtype, chunks, filters; soft links " +
          "their target). For a dataset: shape, dtype (numpy string; compound types also as `fields`), chunk shape, " +
          "filters, compressor, fill value, attributes and storage (inline, chunked, contiguous, split, external array " +
          "link). `depth` lists more levels (bounded). Read from the index only: no data, no chunk refs.",
        querystring: MetaQuery,
        response: {
          200: { description: "The node", headers: { ETag: dataHeaderDoc.etag }, content: { "application/json": { schema: MetaNode } } },
          304: dataNotModified,
          ...dataSourceErrors,
        },
      },
    },
    async (req, reply) => {
      const ix = await data.open(req.query);
      const tag = dataAnswerTag(ix, "meta", req.query, req.url);
      if (answerIfNotModified(req, reply, tag, true)) return reply;
      // the same query on the same index version: the answer as encoded before
      let answer = data.answers.get(tag);
      if (!answer) {
        let node;
        try {
          node = describePath(ix, req.query.path ?? "/", { depth: req.query.depth ?? 1, maxNodes: MAX_META_NODES });
        } catch (e) {
          throw dataHttpError(e);
        }
        answer = jsonAnswer(Buffer.from(JSON.stringify(node), "utf8"));
        data.answers.set(tag, answer);
      }
      return sendAnswer(reply, tag, answer);
    },
  );
}
