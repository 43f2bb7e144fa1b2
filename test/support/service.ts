/** The service configured for tests: loopback only, quiet, small pool, no probe reuse. */
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
