/**
 * The service configuration: one typed object, read from the environment by
 * `loadConfig` (used by src/main.ts) or built directly by tests.
 *
 * Every variable is listed in `ENVIRONMENT` (name, default, meaning); README,
 * docker-compose.yml and the docker tests are checked against that list.
 */
import { availableParallelism } from "node:os";
import path from "node:path";

export interface ServiceConfig {
  /** TCP port (0 = ephemeral). */
  port: number;
  host: string;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;

  /** Disk cache directory (created if missing). */
  cacheDir: string;
  /** Disk cache bound (sum of entry files), bytes. */
  cacheMaxBytes: number;
  /** Memory cache bound (identity + gzip + br variants), bytes. */
  memoryCacheBytes: number;

  /** Source hosts allowed (exact names, `*.suffix` wildcards), or "*" for any public host. */
  allowedHosts: string[] | "*";
  /** true: private/loopback/link-local targets allowed; a list: allowed only for these hosts (names or IP literals). */
  allowPrivateNetworks: boolean | string[];
  /** Sources larger than this are refused with 413, bytes. */
  maxSourceBytes: number;

  /** Builds waiting for a slot beyond the running ones; more → 503. */
  buildQueueMax: number;
  /** Builds running at once (and the builder's worker pool size). */
  poolSize: number;
  /** A build taking longer is aborted (504). */
  buildTimeoutSeconds: number;
  /** Keep-alive connections per origin host for index builds. */
  originConnections: number;

  /** How long a probe (size + validator) of a source is reused, seconds (0 = only concurrent requests share one). */
  probeTtlSeconds: number;
  /** A probe taking longer fails with 504, seconds. */
  probeTimeoutSeconds: number;
  /** Default and largest `wait=` of GET /lindi, seconds. */
  defaultWaitSeconds: number;
  maxWaitSeconds: number;

  /**
   * Browser origins that may read GET/HEAD answers (CORS): "*" for any, a list
   * of origins (`https://viewer.example.org`), or null for no CORS headers.
   */
  corsOrigins: string[] | "*" | null;

  /** @fastify/under-pressure limits (0 disables a check). */
  maxEventLoopDelayMs: number;
  maxHeapUsedBytes: number;
  maxRssBytes: number;

  // ---- data endpoints (/meta, /chunk, /slice) ----
  /** Most elements one /slice answer may hold (more → 413). */
  sliceMaxElements: number;
  /** Most bytes of decoded values one /slice answer may hold (more → 413). */
  sliceMaxBytes: number;
  /** Decoded bytes of /slice answers produced at once; more wait (bounded by sliceQueueSeconds), bytes. */
  sliceInflightBytes: number;
  /** Longest wait for that budget; then 503 + Retry-After, seconds. */
  sliceQueueSeconds: number;
  /** Bound of the chunk cache shared by all data requests (encoded chunk bytes), bytes. */
  chunkCacheBytes: number;
  /** Worker threads that share the inflating of a cold read's chunks with the event loop (0: none). */
  inflateThreads: number;
  /** Bound of the cache of encoded /slice and /meta answers by ETag (0: off), bytes; answers over an eighth of it are not kept. */
  answerCacheBytes: number;

  // ---- precompute jobs and the mirror (src/jobs) ----
  /** Job records (null: `<cacheDir>/jobs`). */
  jobsDir: string | null;
  /** Mirror directory; when set, every job writes its indexes there (null: jobs asking `mirror: true` write to `<cacheDir>/mirror`). */
  mirrorDir: string | null;
  /** Items of one precompute job built at once (0: half the pool, at least 1). */
  jobConcurrency: number;
}

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid configuration:\n  ${problems.join("\n  ")}`);
    this.name = "ConfigError";
  }
}

export const DEFAULT_ALLOWED_HOSTS = ["api.dandiarchive.org", "dandiarchive.s3.amazonaws.com"];

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

export function defaultPoolSize(): number {
  return Math.max(1, Math.min(4, availableParallelism()));
}

/** One inflate worker when there is a second core for it, else none. */
export function defaultInflateThreads(): number {
  return availableParallelism() >= 2 ? 1 : 0;
}

/** The built-in defaults (cacheDir relative to the working directory). */
export function defaultConfig(): ServiceConfig {
  return {
    port: 8080,
    host: "0.0.0.0",
    logLevel: "info",
    cacheDir: path.resolve(".lindi-cache"),
    cacheMaxBytes: 10 * GiB,
    memoryCacheBytes: 256 * MiB,
    allowedHosts: [...DEFAULT_ALLOWED_HOSTS],
    allowPrivateNetworks: false,
    maxSourceBytes: 1 * TiB,
    buildQueueMax: 64,
    poolSize: defaultPoolSize(),
    buildTimeoutSeconds: 600,
    originConnections: 128,
    probeTtlSeconds: 10,
    probeTimeoutSeconds: 30,
    defaultWaitSeconds: 30,
    maxWaitSeconds: 300,
    corsOrigins: "*",
    maxEventLoopDelayMs: 1000,
    maxHeapUsedBytes: 0,
    maxRssBytes: 0,
    sliceMaxElements: 4 * 1024 * 1024,
    sliceMaxBytes: 64 * MiB,
    sliceInflightBytes: 512 * MiB,
    sliceQueueSeconds: 30,
    chunkCacheBytes: 256 * MiB,
    inflateThreads: defaultInflateThreads(),
    answerCacheBytes: 64 * MiB,
    // ---- precompute jobs and the mirror ----
    jobsDir: null,
    mirrorDir: null,
    jobConcurrency: 0,
  };
}

export interface EnvVar {
  name: string;
  field: keyof ServiceConfig;
  default: string;
  description: string;
}

/** Every environment variable `loadConfig` reads. */
export const ENVIRONMENT: readonly EnvVar[] = [
  { name: "PORT", field: "port", default: "8080", description: "TCP port" },
  { name: "HOST", field: "host", default: "0.0.0.0", description: "listen address" },
  { name: "LOG_LEVEL", field: "logLevel", default: "info", description: "pino level (fatal … trace, silent)" },
  { name: "LINDI_CACHE_DIR", field: "cacheDir", default: "./.lindi-cache", description: "disk cache directory" },
  { name: "LINDI_CACHE_MAX_BYTES", field: "cacheMaxBytes", default: "10GiB", description: "disk cache bound (LRU eviction); accepts K/M/G/T[i]B suffixes" },
  { name: "LINDI_MEMORY_CACHE_BYTES", field: "memoryCacheBytes", default: "256MiB", description: "memory cache bound (LRU, in front of the disk)" },
  {
    name: "LINDI_ALLOWED_HOSTS",
    field: "allowedHosts",
    default: DEFAULT_ALLOWED_HOSTS.join(","),
    description: "comma-separated source hosts (`*.suffix` wildcards); `*` = any public host; checked on every redirect too",
  },
  {
    name: "LINDI_ALLOW_PRIVATE_NETWORKS",
    field: "allowPrivateNetworks",
    default: "false",
    description: "`true` allows loopback/private/link-local targets; a comma-separated host list allows them for those hosts only",
  },
  { name: "LINDI_MAX_SOURCE_BYTES", field: "maxSourceBytes", default: "1TiB", description: "larger sources get 413" },
  { name: "LINDI_BUILD_QUEUE_MAX", field: "buildQueueMax", default: "64", description: "builds waiting beyond the running ones; more get 503 + Retry-After" },
  { name: "LINDI_POOL_SIZE", field: "poolSize", default: "min(4, CPUs)", description: "builds running at once (worker threads)" },
  { name: "LINDI_BUILD_TIMEOUT_SECONDS", field: "buildTimeoutSeconds", default: "600", description: "a longer build is aborted (504)" },
  { name: "LINDI_ORIGIN_CONNECTIONS", field: "originConnections", default: "128", description: "keep-alive connections per origin host for index builds (their range requests are latency-bound: more connections, fewer waits)" },
  { name: "LINDI_PROBE_TTL_SECONDS", field: "probeTtlSeconds", default: "10", description: "how long a source probe (size, ETag) is reused" },
  { name: "LINDI_PROBE_TIMEOUT_SECONDS", field: "probeTimeoutSeconds", default: "30", description: "a slower source probe fails with 504" },
  { name: "LINDI_MAX_WAIT_SECONDS", field: "maxWaitSeconds", default: "300", description: "largest `wait=` accepted by GET /lindi" },
  {
    name: "LINDI_CORS_ORIGINS",
    field: "corsOrigins",
    default: "*",
    description: "browser origins allowed to read GET/HEAD answers (comma-separated, e.g. `https://viewer.example.org`); `*` = any; `none` = no CORS headers. POST/DELETE are never allowed cross-origin",
  },
  { name: "LINDI_MAX_EVENT_LOOP_DELAY_MS", field: "maxEventLoopDelayMs", default: "1000", description: "503 while the event loop lags more (0 = off)" },
  { name: "LINDI_MAX_HEAP_USED_BYTES", field: "maxHeapUsedBytes", default: "0", description: "503 while the V8 heap is larger (0 = off)" },
  { name: "LINDI_MAX_RSS_BYTES", field: "maxRssBytes", default: "0", description: "503 while the RSS is larger (0 = off)" },
  // ---- data endpoints (/meta, /chunk, /slice) ----
  { name: "LINDI_SLICE_MAX_ELEMENTS", field: "sliceMaxElements", default: "4194304", description: "most elements one /slice answer may hold; more get 413" },
  { name: "LINDI_SLICE_MAX_BYTES", field: "sliceMaxBytes", default: "64MiB", description: "most bytes of decoded values one /slice answer may hold; more get 413" },
  {
    name: "LINDI_SLICE_INFLIGHT_BYTES",
    field: "sliceInflightBytes",
    default: "512MiB",
    description: "decoded bytes of /slice answers produced at once (bounds their memory); later requests wait in arrival order; one larger than this runs alone",
  },
  { name: "LINDI_SLICE_QUEUE_SECONDS", field: "sliceQueueSeconds", default: "30", description: "longest wait for that budget; then 503 + Retry-After" },
  { name: "LINDI_CHUNK_CACHE_BYTES", field: "chunkCacheBytes", default: "256MiB", description: "chunk cache shared by /slice requests (LRU, encoded bytes); decoded chunks get a quarter of this more" },
  {
    name: "LINDI_INFLATE_THREADS",
    field: "inflateThreads",
    default: "1 (0 on one core)",
    description: "worker threads that inflate gzip chunks of cold /slice reads alongside the event loop (the first chunk of each burst stays on the event loop); 0 = inflate on the event loop only",
  },
  {
    name: "LINDI_ANSWER_CACHE_BYTES",
    field: "answerCacheBytes",
    default: "64MiB",
    description: "encoded /slice and /meta answers kept by ETag (LRU): a repeated query is answered without decoding or encoding again; answers over an eighth of this are not kept; 0 = off",
  },
  // ---- precompute jobs and the mirror (src/jobs) ----
  { name: "LINDI_JOBS_DIR", field: "jobsDir", default: "<LINDI_CACHE_DIR>/jobs", description: "precompute job records (JSON, survive restarts)" },
  { name: "LINDI_MIRROR_DIR", field: "mirrorDir", default: "unset", description: "when set, every precompute job writes its indexes there in the mirror layout (served at /mirror/); unset: jobs asking mirror:true use <LINDI_CACHE_DIR>/mirror" },
  { name: "LINDI_JOB_CONCURRENCY", field: "jobConcurrency", default: "0", description: "items of one precompute job built at once (0 = max(1, LINDI_POOL_SIZE/2)); jobs run one at a time" },
];

const SIZE_UNITS: Record<string, number> = {
  "": 1,
  b: 1,
  k: KiB,
  kb: 1000,
  kib: KiB,
  m: MiB,
  mb: 1000 ** 2,
  mib: MiB,
  g: GiB,
  gb: 1000 ** 3,
  gib: GiB,
  t: TiB,
  tb: 1000 ** 4,
  tib: TiB,
};

/** "1048576", "512MiB", "10GB", "1.5G" → bytes; throws on anything else. */
export function parseBytes(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? SIZE_UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new Error(`not a byte size: ${JSON.stringify(text)}`);
  const n = Math.floor(Number(m[1]) * unit);
  if (!Number.isSafeInteger(n)) throw new Error(`byte size out of range: ${JSON.stringify(text)}`);
  return n;
}

function parseBool(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(t)) return true;
  if (["0", "false", "no", "off", ""].includes(t)) return false;
  return undefined;
}

function parseHostList(text: string): string[] {
  return text
    .split(",")
    .map((h) => h.trim().toLowerCase())
    .filter((h) => h !== "")
    .map((h) => (h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h));
}

const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"];

/**
 * Reads the configuration from environment variables (unset or empty → default).
 * Throws `ConfigError` listing every problem.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, base: ServiceConfig = defaultConfig()): ServiceConfig {
  const cfg: ServiceConfig = { ...base };
  const problems: string[] = [];
  const get = (name: string): string | undefined => {
    const v = env[name];
    return v === undefined || v.trim() === "" ? undefined : v.trim();
  };
  const int = (name: string, field: keyof ServiceConfig, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const v = get(name);
    if (v === undefined) return;
    const n = Number(v);
    if (!/^\d+$/.test(v) || !Number.isSafeInteger(n) || n < min || n > max) {
      problems.push(`${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(v)}`);
      return;
    }
    (cfg as unknown as Record<string, unknown>)[field] = n;
  };
  const bytes = (name: string, field: keyof ServiceConfig, min: number) => {
    const v = get(name);
    if (v === undefined) return;
    try {
      const n = parseBytes(v);
      if (n < min) throw new Error(`must be at least ${min}`);
      (cfg as unknown as Record<string, unknown>)[field] = n;
    } catch (e) {
      problems.push(`${name}: ${(e as Error).message}`);
    }
  };

  int("PORT", "port", 0, 65535);
  const host = get("HOST");
  if (host !== undefined) cfg.host = host;
  const level = get("LOG_LEVEL");
  if (level !== undefined) {
    if (LOG_LEVELS.includes(level.toLowerCase())) cfg.logLevel = level.toLowerCase();
    else problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(level)}`);
  }
  const dir = get("LINDI_CACHE_DIR");
  if (dir !== undefined) cfg.cacheDir = path.resolve(dir);
  bytes("LINDI_CACHE_MAX_BYTES", "cacheMaxBytes", 0);
  bytes("LINDI_MEMORY_CACHE_BYTES", "memoryCacheBytes", 0);

  const hosts = get("LINDI_ALLOWED_HOSTS");
  if (hosts !== undefined) {
    const list = parseHostList(hosts);
    if (list.includes("*")) cfg.allowedHosts = "*";
    else if (list.length === 0) problems.push("LINDI_ALLOWED_HOSTS is empty");
    else cfg.allowedHosts = list;
  }
  const priv = get("LINDI_ALLOW_PRIVATE_NETWORKS");
  if (priv !== undefined) {
    const b = parseBool(priv);
    if (b !== undefined) cfg.allowPrivateNetworks = b;
    else if (/^[a-z0-9.:\-[\],\s]+$/i.test(priv)) cfg.allowPrivateNetworks = parseHostList(priv);
    else problems.push(`LINDI_ALLOW_PRIVATE_NETWORKS must be true, false or a host list, got ${JSON.stringify(priv)}`);
  }
  bytes("LINDI_MAX_SOURCE_BYTES", "maxSourceBytes", 1);
  int("LINDI_BUILD_QUEUE_MAX", "buildQueueMax", 0, 1_000_000);
  int("LINDI_POOL_SIZE", "poolSize", 1, 256);
  int("LINDI_BUILD_TIMEOUT_SECONDS", "buildTimeoutSeconds", 1, 7 * 24 * 3600);
  int("LINDI_ORIGIN_CONNECTIONS", "originConnections", 1, 4096);
  int("LINDI_PROBE_TTL_SECONDS", "probeTtlSeconds", 0, 24 * 3600);
  int("LINDI_PROBE_TIMEOUT_SECONDS", "probeTimeoutSeconds", 1, 3600);
  int("LINDI_MAX_WAIT_SECONDS", "maxWaitSeconds", 0, 3600);
  const cors = get("LINDI_CORS_ORIGINS");
  if (cors !== undefined) {
    const list = cors
      .split(",")
      .map((o) => o.trim())
      .filter((o) => o !== "");
    if (list.length === 0 || (list.length === 1 && list[0]!.toLowerCase() === "none")) cfg.corsOrigins = null;
    else if (list.includes("*")) cfg.corsOrigins = "*";
    else {
      const bad = list.filter((o) => !/^https?:\/\/[a-z0-9.-]+(:\d{1,5})?$/i.test(o) && !/^https?:\/\/\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(o));
      if (bad.length > 0) problems.push(`LINDI_CORS_ORIGINS: not an origin (scheme://host[:port]): ${bad.map((b) => JSON.stringify(b)).join(", ")}`);
      else cfg.corsOrigins = list.map((o) => o.toLowerCase());
    }
  }
  int("LINDI_MAX_EVENT_LOOP_DELAY_MS", "maxEventLoopDelayMs", 0, 3_600_000);
  bytes("LINDI_MAX_HEAP_USED_BYTES", "maxHeapUsedBytes", 0);
  bytes("LINDI_MAX_RSS_BYTES", "maxRssBytes", 0);
  // ---- data endpoints (/meta, /chunk, /slice) ----
  int("LINDI_SLICE_MAX_ELEMENTS", "sliceMaxElements", 1);
  bytes("LINDI_SLICE_MAX_BYTES", "sliceMaxBytes", 1);
  bytes("LINDI_SLICE_INFLIGHT_BYTES", "sliceInflightBytes", 1);
  int("LINDI_SLICE_QUEUE_SECONDS", "sliceQueueSeconds", 0, 3600);
  bytes("LINDI_CHUNK_CACHE_BYTES", "chunkCacheBytes", 0);
  int("LINDI_INFLATE_THREADS", "inflateThreads", 0, 64);
  bytes("LINDI_ANSWER_CACHE_BYTES", "answerCacheBytes", 0);
  // ---- precompute jobs and the mirror ----
  const jobsDir = get("LINDI_JOBS_DIR");
  if (jobsDir !== undefined) cfg.jobsDir = path.resolve(jobsDir);
  const mirrorDir = get("LINDI_MIRROR_DIR");
  if (mirrorDir !== undefined) cfg.mirrorDir = path.resolve(mirrorDir);
  int("LINDI_JOB_CONCURRENCY", "jobConcurrency", 0, 1024);

  if (cfg.defaultWaitSeconds > cfg.maxWaitSeconds) cfg.defaultWaitSeconds = cfg.maxWaitSeconds;
  if (problems.length > 0) throw new ConfigError(problems);
  return cfg;
}
