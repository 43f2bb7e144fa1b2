/**
 * Which hosts may receive the DANDI API key. The key is sent only to the
 * DANDI API itself, never to where it redirects (presigned S3 URLs).
 */

/** DANDI API hosts that receive `Authorization: token <key>` by default (HTTPS only). */
export const DEFAULT_DANDI_API_HOSTS: readonly string[] = Object.freeze([
  "api.dandiarchive.org",
  "api-staging.dandiarchive.org",
]);

/**
 * True when `url` may carry the API key. An entry is either a host name
 * (`api.dandiarchive.org`, `host:port`), matched only over https:, or an
 * origin with scheme (`http://127.0.0.1:8080`), matched exactly.
 */
export function isAuthHost(url: URL | string, hosts: readonly string[] = DEFAULT_DANDI_API_HOSTS): boolean {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    return false;
  }
  if (u.username || u.password) return false;
  for (const raw of hosts) {
    const entry = raw.trim().toLowerCase();
    if (!entry) continue;
    if (entry.includes("://")) {
      let origin: string;
      try {
        origin = new URL(entry).origin;
      } catch {
        continue;
      }
      if (u.origin === origin) return true;
      continue;
    }
    if (u.protocol !== "https:") continue;
    if (u.host === entry || u.hostname === entry || (u.port === "" && u.hostname + ":443" === entry)) return true;
  }
  return false;
}

/** The headers to add for `url`: `{ authorization: "token <key>" }` for API hosts, else nothing. */
export function authHeadersFor(
  url: URL | string,
  token: string | undefined,
  hosts: readonly string[] = DEFAULT_DANDI_API_HOSTS,
): Record<string, string> {
  if (!token) return {};
  return isAuthHost(url, hosts) ? { authorization: `token ${token}` } : {};
}

const DANDI_ASSET_DOWNLOAD = /^\/api\/assets\/[^/]+\/download\/?$/;

/** `https://api.dandiarchive.org/api/assets/<id>/download/` (or staging): redirects to a presigned S3 URL. */
export function isDandiAssetDownloadUrl(url: URL | string, hosts: readonly string[] = DEFAULT_DANDI_API_HOSTS): boolean {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    return false;
  }
  return isAuthHost(u, hosts) && DANDI_ASSET_DOWNLOAD.test(u.pathname);
}

/**
 * For an AWS SigV4 presigned URL (`X-Amz-Date` + `X-Amz-Expires`), the time
 * (ms since epoch) it stops working; undefined for other URLs.
 */
export function presignedExpiry(url: URL | string): number | undefined {
  let u: URL;
  try {
    u = typeof url === "string" ? new URL(url) : url;
  } catch {
    return undefined;
  }
  const date = u.searchParams.get("X-Amz-Date");
  const expires = u.searchParams.get("X-Amz-Expires");
  if (date && expires && /^\d+$/.test(expires)) {
    const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(date);
    if (!m) return undefined;
    const t = Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!);
    return t + Number(expires) * 1000;
  }
  const legacy = u.searchParams.get("Expires"); // SigV2: seconds since epoch
  if (legacy && /^\d+$/.test(legacy) && u.searchParams.has("Signature")) return Number(legacy) * 1000;
  return undefined;
}
