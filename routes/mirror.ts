/**
 * GET/HEAD /mirror/<path> — the mirror directory as a static tree, so the
 * service can itself be the mirror a viewer points at
 * (`/mirror/dandi/dandisets/<id>/assets/<asset_id>/nwb.lindi.json`).
 *
 * Only plain files under the directory whose every segment is a plain name
 * (no dot segments, no dotfiles such as temporary files, no symlinks leading
 * out) are served; anything else is 404. Strong ETag (inode, size, mtime:
 * files are only ever replaced by rename), If-None-Match → 304, gzip when
 * accepted.
 */
import { createReadStream } from "node:fs";
import { realpath, stat } from "node:fs/promises";
import path from "node:path";
import { createGzip } from "node:zlib";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { Type } from "@sinclair/typebox";
import { segmentProblem } from "../src/jobs/paths.ts";
import { ServiceError } from "../src/service/errors.ts";
import { errorResponse } from "../src/service/schemas.ts";

export interface MirrorRoutesOptions {
  /** The mirror directory (need not exist yet). */
  root: string;
}

const MirrorParams = Type.Object({ "*": Type.String({ description: "Path inside the mirror, e.g. dandi/dandisets/000409/assets/<asset_id>/nwb.lindi.json" }) });

const notFound = () => new ServiceError(404, "not in the mirror");

/** Whether gzip is acceptable (q > 0 for gzip, x-gzip or *). */
function acceptsGzip(header: string | undefined): boolean {
  if (!header) return false;
  let gzip: number | undefined;
  let star: number | undefined;
  for (const part of header.split(",")) {
    const [token, ...params] = part.trim().split(";");
    const name = token?.trim().toLowerCase();
    let q = 1;
    for (const p of params) {
      const m = /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p);
      if (m) q = Number(m[1]);
    }
    if (name === "gzip" || name === "x-gzip") gzip = Math.max(gzip ?? 0, q);
    else if (name === "*") star = q;
  }
  return (gzip ?? star ?? 0) > 0;
}

function matches(header: string | undefined, base: string): boolean {
  if (!header) return false;
  if (header.trim() === "*") return true;
  return header.split(",").some((raw) => {
    const m = /^"([^"]*)"$/.exec(raw.trim().replace(/^W\//i, ""));
    return !!m && m[1]!.replace(/-gzip$/, "") === base;
  });
}

function contentType(file: string): string {
  return file.endsWith(".json") ? "application/json" : "application/octet-stream";
}

/** The relative path asked for, or undefined when it is not a plain path. */
function relativePath(rawUrl: string): string | undefined {
  const pathname = rawUrl.split("?")[0]!;
  if (!pathname.startsWith("/mirror/")) return undefined;
  const segs: string[] = [];
  for (const raw of pathname.slice("/mirror/".length).split("/")) {
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      return undefined;
    }
    if (segmentProblem(seg) !== undefined) return undefined;
    segs.push(seg);
  }
  return segs.length > 0 ? segs.join("/") : undefined;
}

export default async function mirrorRoutes(app: FastifyInstance, opts: MirrorRoutesOptions): Promise<void> {
  const root = path.resolve(opts.root);

  async function serve(req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
    const rel = relativePath(req.url);
    if (rel === undefined) throw notFound();
    const full = path.join(root, ...rel.split("/"));
    let size: number;
    let etagBase: string;
    let mtime: Date;
    try {
      // symlinks may not lead out of the tree
      const [realRoot, realFile] = await Promise.all([realpath(root), realpath(full)]);
      if (!realFile.startsWith(realRoot + path.sep)) throw notFound();
      const st = await stat(realFile);
      if (!st.isFile()) throw notFound();
      size = st.size;
      mtime = st.mtime;
      etagBase = `${st.ino.toString(16)}-${st.size.toString(16)}-${Math.floor(st.mtimeMs).toString(16)}`;
    } catch (e) {
      if (e instanceof ServiceError) throw e;
      throw notFound();
    }
    const gzip = size > 256 && acceptsGzip(req.headers["accept-encoding"]);
    reply
      .header("etag", gzip ? `"${etagBase}-gzip"` : `"${etagBase}"`)
      .header("vary", "Accept-Encoding")
      .header("cache-control", "public, no-cache")
      .header("last-modified", mtime.toUTCString());
    if (matches(req.headers["if-none-match"], etagBase)) return reply.code(304).send();
    reply.header("content-type", contentType(full));
    if (gzip) reply.header("content-encoding", "gzip");
    else reply.header("content-length", String(size));
    if (req.method === "HEAD") return reply.code(200).send();
    const body = createReadStream(full);
    return reply.code(200).send(gzip ? body.pipe(createGzip({ level: 6 })) : body);
  }

  const responses = {
    304: { description: "Not modified (If-None-Match matched)", type: "null" },
    404: errorResponse("Not in the mirror (or not a plain path)"),
  };
  const headers = {
    ETag: { type: "string", description: "Strong validator of this representation" },
    "Content-Encoding": { type: "string", description: "gzip when accepted" },
  };

  app.get(
    "/mirror/*",
    {
      schema: {
        // not in the OpenAPI document: its wildcard path has no OpenAPI form the contract test can map back to a route
        operationId: "getMirrorFile",
        tags: ["jobs"],
        summary: "A file of the mirror directory",
        description:
          "Serves the mirror written by precompute jobs: `<path>.lindi.json` indexes and the `info.json` beside each " +
          "(generator, source URL and validator, build time, sizes). ETag + If-None-Match, gzip when accepted.",
        params: MirrorParams,
        response: {
          200: { description: "The file", headers, content: { "application/json": { schema: {} }, "application/octet-stream": { schema: {} } } },
          ...responses,
        },
      },
    },
    serve,
  );
  app.head(
    "/mirror/*",
    {
      schema: {
        operationId: "headMirrorFile",
        tags: ["jobs"],
        summary: "Headers of a file of the mirror directory",
        params: MirrorParams,
        response: { 200: { description: "The file exists", headers, type: "null" }, ...responses },
      },
    },
    serve,
  );
}
