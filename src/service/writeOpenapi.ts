/**
 * Regenerates openapi/openapi.yaml from the route schemas of the running app:
 *
 *   npx tsx src/service/writeOpenapi.ts          # write the file
 *   npx tsx src/service/writeOpenapi.ts --check  # exit 1 when the file is stale
 *
 * test/openapi.test.ts fails when the checked-in document and the routes disagree.
 */
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { defaultConfig } from "../config.ts";
import type { IndexBuilder } from "../index/types.ts";
import { buildServer } from "../server.ts";

export const OPENAPI_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../openapi/openapi.yaml");

const HEADER = "# Generated from the route schemas by `npx tsx src/service/writeOpenapi.ts`; do not edit by hand.\n";

/** A builder that is never called: the document only needs the routes. */
const inertBuilder: IndexBuilder = {
  probe: () => Promise.reject(new Error("not available")),
  build: () => Promise.reject(new Error("not available")),
  close: () => Promise.resolve(),
};

/** The OpenAPI document of an app built with the default configuration. */
export async function generateOpenapi(): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(path.join(tmpdir(), "lindi-openapi-"));
  try {
    const app = await buildServer({ ...defaultConfig(), logLevel: "silent", cacheDir: dir }, { builder: inertBuilder });
    try {
      await app.ready();
      return JSON.parse(JSON.stringify(app.swagger())) as Record<string, unknown>;
    } finally {
      await app.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export function openapiYaml(doc: Record<string, unknown>): string {
  return HEADER + stringify(doc, { lineWidth: 0, aliasDuplicateObjects: false });
}

async function main(): Promise<void> {
  const text = openapiYaml(await generateOpenapi());
  if (process.argv.includes("--check")) {
    const current = await readFile(OPENAPI_PATH, "utf8").catch(() => "");
    if (current !== text) {
      console.error(`${OPENAPI_PATH} is stale: run npx tsx src/service/writeOpenapi.ts`);
      process.exit(1);
    }
    console.log(`${OPENAPI_PATH} is up to date`);
    return;
  }
  await writeFile(OPENAPI_PATH, text);
  console.log(`wrote ${OPENAPI_PATH}`);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((e: unknown) => {
    console.error(e);
    process.exit(1);
  });
}
