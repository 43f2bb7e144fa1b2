/** The service configured for tests: loopback only, quiet, small pool, no probe reuse. */
import type { FastifyInstance } from "fastify";
import { request } from "undici";
import { defaultConfig, type ServiceConfig } from "../../src/config.ts";

export function testConfig(cacheDir: string, over: Partial<ServiceConfig> = {}): ServiceConfig {
  return {
    ...defaultConfig(),
    port: 0,
    host: "127.0.0.1",
    logLevel: "silent",
    cacheDir,
    allowedHosts: ["127.0.0.1"],
    allowPrivateNetworks: true,
    poolSize: 2,
    probeTtlSeconds: 0,
    probeTimeoutSeconds: 10,
    buildTimeoutSeconds: 60,
    maxEventLoopDelayMs: 0,
    ...over,
  };
}

/** A response read whole, with headers flattened to strings. */
export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
  json<T = Record<string, unknown>>(): T;
}

/** GET `pathAndQuery` from the service at `base`. */
export async function call(base: string, pathAndQuery: string, headers: Record<string, string> = {}): Promise<Answer> {
  const res = await request(base + pathAndQuery, { headers });
  const body = Buffer.from(await res.body.arrayBuffer());
  const h: Record<string, string> = {};
  for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) h[k] = Array.isArray(v) ? v.join(", ") : v;
  return { status: res.statusCode, headers: h, body, json: <T>() => JSON.parse(body.toString("utf8")) as T };
}

/** Starts `app` on an ephemeral loopback port; returns its base URL. */
export async function listenLoopback(app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: "127.0.0.1" });
  const addr = app.server.address();
  if (!addr || typeof addr !== "object") throw new Error("the server has no TCP address");
  return `http://127.0.0.1:${addr.port}`;
}
