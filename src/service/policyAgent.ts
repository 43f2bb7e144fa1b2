/**
 * The undici Agent of the service's HTTP clients: the HttpClient's own
 * connection settings, with every connection's address checked by the URL
 * policy (its `connectLookup`), so DNS rebinding cannot reach a private
 * address either.
 */
import { Agent } from "undici";
import type { UrlPolicy } from "./urlPolicy.ts";

export function policyAgent(policy: UrlPolicy, connections: number): Agent {
  return new Agent({
    connections,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 60_000,
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
    connect: { timeout: 10_000, lookup: policy.connectLookup },
  });
}
