/**
 * Which source URLs the service may fetch: http/https only, allow-listed
 * hosts, and no loopback / private / link-local / metadata addresses (after
 * DNS resolution) unless configured. The same check runs on the URL a client
 * gives and, through the builder's `checkUrl` hook, on every redirect target.
 *
 * `connectLookup` is a `dns.lookup` replacement for the HTTP client's
 * connector: it applies the same address check to the addresses actually
 * connected to, so a name that resolves to a public address when checked and
 * to a private one when connecting (DNS rebinding) is refused too.
 */
import { lookup as dnsLookup } from "node:dns/promises";
import { BlockList, isIP } from "node:net";
import { LRUCache } from "lru-cache";
import { HttpSourceError, OriginNetworkError, redactUrl } from "../hdf5/httpErrors.ts";

/** A URL the policy refuses: 400 for malformed/unsupported, 403 for not allowed. */
export class UrlRefusedError extends HttpSourceError {
  constructor(message: string, statusHint: 400 | 403, url?: string | URL) {
    super(message, statusHint, { url });
  }
}

export type LookupFn = (hostname: string) => Promise<Array<{ address: string; family: number }>>;

export interface UrlPolicyOptions {
  /** Exact host names, `*.suffix` wildcards, or "*" for any host. */
  allowedHosts: readonly string[] | "*";
  /** true: private targets allowed; a list: allowed for these host names / IP literals only. */
  allowPrivateNetworks: boolean | readonly string[];
  /** DNS resolution (default: dns.lookup with all addresses). */
  lookup?: LookupFn;
  /** DNS resolution when connecting (default: `lookup`); separate so tests can script a rebinding. */
  connectResolver?: LookupFn;
  /** How long a resolution is reused, ms. Default 30 000. */
  dnsCacheTtlMs?: number;
}

/** The `lookup` option of net.connect / undici's connector. */
export type ConnectLookup = (
  hostname: string,
  options: { all?: boolean; family?: number | string },
  callback: (err: Error | null, address: string | Array<{ address: string; family: number }>, family?: number) => void,
) => void;

export interface UrlPolicy {
  /** Throws `UrlRefusedError` (400/403) when the URL may not be fetched; DNS failures throw 502. */
  check(url: string | URL): Promise<void>;
  /** Parses and checks syntax, scheme and allow-list only (no DNS). */
  parse(url: string): URL;
  hostAllowed(hostname: string): boolean;
  /** DNS lookup for connections: resolves, then refuses non-public addresses unless the host is exempt. */
  connectLookup: ConnectLookup;
}

// ---- address classification -------------------------------------------------

const V4_BLOCKED: Array<[string, number, string]> = [
  ["0.0.0.0", 8, "unspecified"],
  ["10.0.0.0", 8, "private"],
  ["100.64.0.0", 10, "shared address space (CGNAT; cloud metadata)"],
  ["127.0.0.0", 8, "loopback"],
  ["169.254.0.0", 16, "link-local (cloud metadata)"],
  ["172.16.0.0", 12, "private"],
  ["192.0.0.0", 24, "IETF protocol assignments"],
  ["192.0.2.0", 24, "documentation"],
  ["192.88.99.0", 24, "6to4 relay"],
  ["192.168.0.0", 16, "private"],
  ["198.18.0.0", 15, "benchmarking"],
  ["198.51.100.0", 24, "documentation"],
  ["203.0.113.0", 24, "documentation"],
  ["224.0.0.0", 4, "multicast"],
  ["240.0.0.0", 4, "reserved"],
];

const V6_BLOCKED: Array<[string, number, string]> = [
  ["::", 128, "unspecified"],
  ["::1", 128, "loopback"],
  ["100::", 64, "discard"],
  ["2001:db8::", 32, "documentation"],
  ["2001::", 23, "IETF protocol assignments"],
  ["fc00::", 7, "unique local (private)"],
  ["fe80::", 10, "link-local"],
  ["fec0::", 10, "site-local"],
  ["ff00::", 8, "multicast"],
];

function compile(rules: Array<[string, number, string]>, family: "ipv4" | "ipv6"): Array<[BlockList, string]> {
  return rules.map(([net, bits, why]) => {
    const l = new BlockList();
    l.addSubnet(net, bits, family);
    return [l, why];
  });
}
const V4_RULES = compile(V4_BLOCKED, "ipv4");
const V6_RULES = compile(V6_BLOCKED, "ipv6");

/** Eight 16-bit groups of an IPv6 address (embedded dotted IPv4 allowed). */
function ipv6Groups(addr: string): number[] | undefined {
  let a = addr.toLowerCase();
  const zone = a.indexOf("%");
  if (zone >= 0) a = a.slice(0, zone);
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (dotted) {
    const p = dotted[1]!.split(".").map(Number);
    a = a.slice(0, -dotted[1]!.length) + `${((p[0]! << 8) | p[1]!).toString(16)}:${((p[2]! << 8) | p[3]!).toString(16)}`;
  }
  const halves = a.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(":") : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(":") : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...tail].map((g) => parseInt(g, 16));
  return groups.length === 8 && groups.every((g) => Number.isInteger(g) && g >= 0 && g <= 0xffff) ? groups : undefined;
}

/** The IPv4 address carried inside an IPv6 one (mapped, compatible, NAT64, 6to4), if any. */
function embeddedV4(groups: number[]): string | undefined {
  const v4 = (hi: number, lo: number) => `${hi >> 8}.${hi & 0xff}.${lo >> 8}.${lo & 0xff}`;
  const zeros = (from: number, to: number) => groups.slice(from, to).every((g) => g === 0);
  if (zeros(0, 5) && groups[5] === 0xffff) return v4(groups[6]!, groups[7]!); // ::ffff:a.b.c.d
  if (zeros(0, 6) && (groups[6] !== 0 || groups[7]! > 1)) return v4(groups[6]!, groups[7]!); // ::a.b.c.d (deprecated)
  if (groups[0] === 0x64 && groups[1] === 0xff9b && zeros(2, 6)) return v4(groups[6]!, groups[7]!); // NAT64
  if (groups[0] === 0x2002) return v4(groups[1]!, groups[2]!); // 6to4
  return undefined;
}

/** Why an IP address is not a public unicast address, or undefined when it is. */
export function nonPublicReason(address: string): string | undefined {
  const fam = isIP(address);
  if (fam === 4) {
    if (address === "255.255.255.255") return "broadcast";
    return V4_RULES.find(([l]) => l.check(address, "ipv4"))?.[1];
  }
  if (fam === 6) {
    const groups = ipv6Groups(address);
    if (!groups) return "unparseable IPv6 address";
    const inner = embeddedV4(groups);
    if (inner !== undefined) {
      const r = nonPublicReason(inner);
      if (r) return `${r} (IPv4 inside IPv6)`;
    }
    const canonical = groups.map((g) => g.toString(16)).join(":");
    return V6_RULES.find(([l]) => l.check(canonical, "ipv6"))?.[1];
  }
  return "not an IP address";
}

export function isPublicAddress(address: string): boolean {
  return nonPublicReason(address) === undefined;
}

// ---- the policy ---------------------------------------------------------------

function bareHost(hostname: string): string {
  const h = hostname.toLowerCase().replace(/\.$/, "");
  return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

function hostMatches(host: string, pattern: string): boolean {
  const p = bareHost(pattern);
  if (p === "*") return true;
  if (p.startsWith("*.")) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return host === p;
}

const defaultLookup: LookupFn = (hostname) => dnsLookup(hostname, { all: true, verbatim: true });

export function createUrlPolicy(opts: UrlPolicyOptions): UrlPolicy {
  const lookup = opts.lookup ?? defaultLookup;
  const ttl = opts.dnsCacheTtlMs ?? 30_000;
  const resolved =
    ttl > 0 ? new LRUCache<string, Array<{ address: string; family: number }>>({ max: 10_000, ttl }) : undefined;

  const hostAllowed = (hostname: string): boolean => {
    if (opts.allowedHosts === "*") return true;
    const host = bareHost(hostname);
    return opts.allowedHosts.some((p) => hostMatches(host, p));
  };
  const privateAllowed = (hostname: string): boolean => {
    const p = opts.allowPrivateNetworks;
    if (typeof p === "boolean") return p;
    const host = bareHost(hostname);
    return p.some((x) => hostMatches(host, x));
  };

  const parse = (raw: string): URL => {
    let u: URL;
    try {
      u = new URL(raw);
    } catch {
      throw new UrlRefusedError(`not a valid absolute URL: ${JSON.stringify(raw.slice(0, 200))}`, 400);
    }
    return validate(u);
  };

  /** Scheme, credentials, host and allow-list checks of a parsed URL. */
  const validate = (u: URL): URL => {
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new UrlRefusedError(`only http and https sources are supported, not ${u.protocol}`, 400, u);
    }
    if (u.username !== "" || u.password !== "") {
      throw new UrlRefusedError("credentials in the URL are not accepted", 400, u);
    }
    if (u.hostname === "") throw new UrlRefusedError("the URL has no host", 400, u);
    if (!hostAllowed(u.hostname)) {
      throw new UrlRefusedError(`source host ${bareHost(u.hostname)} is not allowed`, 403, u);
    }
    return u;
  };

  const check = async (url: string | URL): Promise<void> => {
    const u = typeof url === "string" ? parse(url) : validate(url);
    const host = bareHost(u.hostname);
    if (privateAllowed(host)) return;
    let addrs: Array<{ address: string; family: number }>;
    if (isIP(host)) {
      addrs = [{ address: host, family: isIP(host) }];
    } else {
      const cached = resolved?.get(host);
      if (cached) {
        addrs = cached;
      } else {
        try {
          addrs = await lookup(host);
        } catch (e) {
          const code = (e as { code?: string }).code;
          throw new OriginNetworkError(code ?? "DNS", u, { cause: e });
        }
        resolved?.set(host, addrs);
      }
    }
    if (addrs.length === 0) throw new OriginNetworkError("ENOTFOUND", u);
    for (const a of addrs) {
      const why = nonPublicReason(a.address);
      if (why !== undefined) {
        throw new UrlRefusedError(
          `source ${redactUrl(u)} resolves to a non-public address (${why}); refused`,
          403,
          u,
        );
      }
    }
  };

  const connectLookup: ConnectLookup = (hostname, options, callback) => {
    const host = bareHost(hostname);
    (opts.connectResolver ?? lookup)(host).then(
      (all) => {
        let addrs = all;
        const fam = options.family === "IPv4" ? 4 : options.family === "IPv6" ? 6 : Number(options.family ?? 0);
        if (fam === 4 || fam === 6) addrs = addrs.filter((a) => a.family === fam);
        if (addrs.length === 0) {
          callback(Object.assign(new Error(`no address for ${host}`), { code: "ENOTFOUND" }), "", 0);
          return;
        }
        if (!privateAllowed(host)) {
          const bad = addrs.find((a) => nonPublicReason(a.address) !== undefined);
          if (bad) {
            callback(
              new UrlRefusedError(
                `source host ${host} resolves to a non-public address (${nonPublicReason(bad.address)}) when connecting; refused`,
                403,
              ),
              "",
              0,
            );
            return;
          }
        }
        if (options.all) callback(null, addrs);
        else callback(null, addrs[0]!.address, addrs[0]!.family);
      },
      (e: unknown) => callback(e as Error, "", 0),
    );
  };

  return { check, parse, hostAllowed, connectLookup };
}
