/**
 * GET/HEAD /mirror/<path> on its own (a prepared mirror directory, no builds):
 * content types, ETag/304 per coding, gzip negotiation, and nothing but
 * plain files inside the directory (symlinks leading out, dotfiles,
 * directories, traversal → 404).
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { gunzipSync } from "node:zlib";
import type { FastifyInstance } from "fastify";
import { defaultConfig } from "../src/config.ts";
import type { IndexBuilder } from "../src/index/types.ts";
import { buildServer } from "../src/server.ts";

const inertBuilder: IndexBuilder = {
  probe: () => Promise.reject(new Error("unused")),
  build: () => Promise.reject(new Error("unused")),
  close: () => Promise.resolve(),
};

let dir: string;
let app: FastifyInstance;
let port: number;
const INDEX = JSON.stringify({ refs: Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`g${i}/.zattrs`, { i }])), version: 1 }, null, 2);

function get(p: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, path: p, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), "lindi-mirror-test-"));
  const mirror = path.join(dir, "mirror");
  await mkdir(path.join(mirror, "a/b"), { recursive: true });
  await writeFile(path.join(mirror, "a/b/nwb.lindi.json"), INDEX);
  await writeFile(path.join(mirror, "a/b/info.json"), '{"url": "x"}');
  await writeFile(path.join(mirror, "a/b/data.bin"), Buffer.alloc(1000, 7));
  await writeFile(path.join(mirror, "a/b/.nwb.lindi.json.0123456789ab.tmp"), "partial");
  await writeFile(path.join(dir, "secret.json"), '{"secret": true}');
  await symlink(path.join(dir, "secret.json"), path.join(mirror, "a/leak.json"));
  await writeFile(path.join(mirror, "a/inside.json"), "{}");
  await symlink(path.join(mirror, "a/inside.json"), path.join(mirror, "a/alias.json"));
  app = await buildServer(
    { ...defaultConfig(), logLevel: "silent", cacheDir: path.join(dir, "cache"), mirrorDir: mirror, maxEventLoopDelayMs: 0 },
    { builder: inertBuilder },
  );
  await app.listen({ port: 0, host: "127.0.0.1" });
  port = (app.server.address() as { port: number }).port;
});

after(async () => {
  await app.close();
  await rm(dir, { recursive: true, force: true });
});

test("files: content type, length, ETag, 304 per coding, gzip only when accepted", async () => {
  const r = await get("/mirror/a/b/nwb.lindi.json");
  assert.equal(r.status, 200);
  assert.equal(r.headers["content-type"], "application/json");
  assert.equal(r.headers["content-length"], String(Buffer.byteLength(INDEX)));
  assert.equal(r.headers["cache-control"], "public, no-cache");
  assert.equal(r.headers.vary, "Accept-Encoding");
  assert.equal(r.body.toString(), INDEX);
  const etag = r.headers.etag!;
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"$/);
  assert.equal((await get("/mirror/a/b/nwb.lindi.json", { "if-none-match": etag })).status, 304);
  assert.equal((await get("/mirror/a/b/nwb.lindi.json", { "if-none-match": '"other"' })).status, 200);

  const gz = await get("/mirror/a/b/nwb.lindi.json", { "accept-encoding": "gzip" });
  assert.equal(gz.headers["content-encoding"], "gzip");
  assert.equal(gz.headers.etag, etag.replace(/"$/, '-gzip"'));
  assert.equal(gunzipSync(gz.body).toString(), INDEX);
  assert.equal((await get("/mirror/a/b/nwb.lindi.json", { "accept-encoding": "gzip", "if-none-match": gz.headers.etag! })).status, 304);
  for (const ae of ["gzip;q=0", "br", "identity", "*;q=0"]) {
    const plain = await get("/mirror/a/b/nwb.lindi.json", { "accept-encoding": ae });
    assert.equal(plain.headers["content-encoding"], undefined, ae);
    assert.equal(plain.body.toString(), INDEX);
  }
  const head = await get("/mirror/a/b/nwb.lindi.json", {}, "HEAD");
  assert.equal(head.status, 200);
  assert.equal(head.body.byteLength, 0);
  assert.equal(head.headers["content-length"], String(Buffer.byteLength(INDEX)));

  const bin = await get("/mirror/a/b/data.bin");
  assert.equal(bin.headers["content-type"], "application/octet-stream");
  assert.equal(bin.body.byteLength, 1000);
  assert.equal((await get("/mirror/a/b/info.json")).body.toString(), '{"url": "x"}');
  assert.equal((await get("/mirror/a/alias.json")).status, 200, "a symlink staying inside is fine");
});

test("nothing else: traversal, symlinks out, dotfiles, directories, odd names → 404", async () => {
  for (const p of [
    "/mirror/a/leak.json",
    "/mirror/../secret.json",
    "/mirror/a/../../secret.json",
    "/mirror/%2e%2e/secret.json",
    "/mirror/a%2f..%2f..%2fsecret.json",
    "/mirror/a/b/.nwb.lindi.json.0123456789ab.tmp",
    "/mirror/a/b",
    "/mirror/a/b/",
    "/mirror/",
    "/mirror/a//b/info.json",
    "/mirror/a/b/nope.json",
    "/mirror/a/b/info.json%00",
  ]) {
    const r = await get(p);
    assert.equal(r.status, 404, p);
    assert.equal(JSON.parse(r.body.toString()).statusCode, 404);
  }
  assert.equal((await get("/mirror/a/b/%ZZ")).status, 400, "malformed percent-encoding (refused by the router)");
});
