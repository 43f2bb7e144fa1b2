/**
 * The fixture of the data endpoint tests: a loopback range origin serving the
 * corpus and the real service (on loopback, with its cache in a temporary
 * directory) in front of it.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import type { FastifyInstance } from "fastify";
import type { ServiceConfig } from "../../src/config.ts";
import { buildServer } from "../../src/server.ts";
import { requireCorpus } from "./corpus.ts";
import { startRangeOrigin, type RangeOrigin } from "./rangeOrigin.ts";
import { listenLoopback } from "./service.ts";

export interface CorpusService {
  origin: RangeOrigin;
  app: FastifyInstance;
  base: string;
  /** The service's cache directory (removed by close). */
  dir: string;
  close(): Promise<void>;
}

/** Starts both; `configFor` gets the cache directory (named after `dirPrefix`). */
export async function startCorpusService(dirPrefix: string, configFor: (cacheDir: string) => ServiceConfig): Promise<CorpusService> {
  const origin = await startRangeOrigin({ root: requireCorpus() });
  const dir = await mkdtemp(path.join(tmpdir(), dirPrefix));
  const app = await buildServer(configFor(dir));
  const base = await listenLoopback(app);
  return {
    origin,
    app,
    base,
    dir,
    async close() {
      await app.close();
      await origin.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
