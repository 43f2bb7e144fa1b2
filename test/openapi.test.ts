/**
 * The HTTP contract: openapi/openapi.yaml (checked in) must agree with the
 * routes of the running app — paths, methods, parameters, status codes and
 * content types first (readable failures), then the whole document. Regenerate
 * with `npx tsx src/service/writeOpenapi.ts`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { parse } from "yaml";
import { defaultConfig } from "../src/config.ts";
import type { IndexBuilder } from "../src/index/types.ts";
import { buildServer } from "../src/server.ts";
import { generateOpenapi, OPENAPI_PATH, openapiYaml } from "../src/service/writeOpenapi.ts";

type Doc = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
};
type Operation = {
  operationId?: string;
  parameters?: Array<{ name: string; in: string; required?: boolean; schema?: unknown }>;
  responses: Record<string, { content?: Record<string, unknown> }>;
};

const HOW = "openapi/openapi.yaml disagrees with the routes; regenerate it with `npx tsx src/service/writeOpenapi.ts`";

function operations(doc: Doc): Map<string, Operation> {
  const out = new Map<string, Operation>();
  for (const [p, methods] of Object.entries(doc.paths)) {
    for (const [m, op] of Object.entries(methods)) out.set(`${m.toUpperCase()} ${p}`, op);
  }
  return out;
}

const inertBuilder: IndexBuilder = {
  probe: () => Promise.reject(new Error("unused")),
  build: () => Promise.reject(new Error("unused")),
  close: () => Promise.resolve(),
};

test("the checked-in OpenAPI document matches the routes", async () => {
  const checkedIn = parse(await readFile(OPENAPI_PATH, "utf8")) as Doc;
  const live = (await generateOpenapi()) as unknown as Doc;
  assert.equal(checkedIn.openapi, "3.1.0");

  const a = operations(checkedIn);
  const b = operations(live);
  assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort(), `paths/methods: ${HOW}`);
  for (const [key, opLive] of b) {
    const opDoc = a.get(key)!;
    const params = (op: Operation) =>
      (op.parameters ?? []).map((p) => ({ name: p.name, in: p.in, required: p.required ?? false, schema: p.schema })).sort((x, y) => x.name.localeCompare(y.name));
    assert.deepEqual(params(opDoc), params(opLive), `${key} parameters: ${HOW}`);
    assert.deepEqual(Object.keys(opDoc.responses).sort(), Object.keys(opLive.responses).sort(), `${key} status codes: ${HOW}`);
    for (const [status, r] of Object.entries(opLive.responses)) {
      assert.deepEqual(Object.keys(opDoc.responses[status]?.content ?? {}), Object.keys(r.content ?? {}), `${key} ${status} content types: ${HOW}`);
    }
    assert.equal(opDoc.operationId, opLive.operationId, `${key} operationId: ${HOW}`);
  }
  // everything else (schemas, descriptions) too, byte for byte as the generator writes it
  assert.deepEqual(checkedIn, live, HOW);
  assert.equal(await readFile(OPENAPI_PATH, "utf8"), openapiYaml(live as unknown as Record<string, unknown>), HOW);
});

test("the contract covers the required surface, and the app serves it at /openapi.json and /docs", async () => {
  const doc = parse(await readFile(OPENAPI_PATH, "utf8")) as Doc;
  const ops = operations(doc);
  for (const key of ["GET /lindi", "HEAD /lindi", "GET /builds/{id}", "GET /healthz", "GET /readyz", "GET /metrics", "GET /openapi.json"]) {
    assert.ok(ops.has(key), key);
  }
  const get = ops.get("GET /lindi")!;
  assert.deepEqual(
    (get.parameters ?? []).map((p) => p.name).sort(),
    ["chunksThreshold", "splitBytes", "url", "wait"],
  );
  for (const s of ["200", "202", "304", "400", "403", "404", "413", "422", "502", "503", "504"]) assert.ok(get.responses[s], `GET /lindi ${s}`);
  for (const s of ["200", "404"]) assert.ok(ops.get("HEAD /lindi")!.responses[s], `HEAD /lindi ${s}`);

  const dir = await mkdtemp(path.join(tmpdir(), "lindi-openapi-"));
  const app = await buildServer({ ...defaultConfig(), logLevel: "silent", cacheDir: dir }, { builder: inertBuilder });
  try {
    // every documented operation is a route of the app
    for (const key of ops.keys()) {
      const [method, p] = key.split(" ") as [string, string];
      assert.ok(app.hasRoute({ method: method as "GET", url: p.replace("{*}", "*").replace(/\{(\w+)\}/g, ":$1") }), key);
    }
    const served = await app.inject({ method: "GET", url: "/openapi.json" });
    assert.equal(served.statusCode, 200);
    assert.match(String(served.headers["content-type"]), /^application\/json/);
    assert.deepEqual(served.json(), doc);
    const ui = await app.inject({ method: "GET", url: "/docs" });
    assert.ok(ui.statusCode === 200 || ui.statusCode === 302, `GET /docs: ${ui.statusCode}`);
    const page = await app.inject({ method: "GET", url: "/docs/" });
    assert.equal(page.statusCode, 200);
    assert.match(page.body, /swagger/i);
    const uiJson = await app.inject({ method: "GET", url: "/docs/json" });
    assert.deepEqual(uiJson.json(), doc);
  } finally {
    await app.close();
    await rm(dir, { recursive: true, force: true });
  }
});
