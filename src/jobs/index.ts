/** Precompute jobs and the mirror: what src/server.ts and the CLI use. */
import path from "node:path";
import type { ServiceConfig } from "../config.ts";

export { GENERATOR } from "./generator.ts";
export { BuildCancellation } from "./cancel.ts";
export { JobManager, type JobManagerOptions, type JobStatus, type JobEvent } from "./manager.ts";

/** Directories and limits of the job manager, from the service config. */
export function jobSettings(config: ServiceConfig): { jobsDir: string; mirrorDir: string; mirrorByDefault: boolean; concurrency: number } {
  return {
    jobsDir: config.jobsDir ?? path.join(config.cacheDir, "jobs"),
    mirrorDir: config.mirrorDir ?? path.join(config.cacheDir, "mirror"),
    mirrorByDefault: config.mirrorDir !== null,
    concurrency: config.jobConcurrency > 0 ? config.jobConcurrency : Math.max(1, Math.floor(config.poolSize / 2)),
  };
}
