/**
 * Compare two LINDI documents the way /work/shared/golden/README.md defines "equal":
 *
 * 1. same set of keys in `refs`;
 * 2. `.zarray` / `.zattrs` / `.zgroup` (and `zarr.json`) values equal as JSON values
 *    (numbers by value, key order irrelevant; string values are parsed first);
 * 3. `[url, offset, length]` refs equal after expanding `templates` in each document
 *    (`opts.mapUrl` is applied to the actual document's URLs);
 * 4. inline chunks equal after decoding: string → bytes → the array's compressor →
 *    filters in reverse (json2 → values compared by value); raw bytes when there is no
 *    compressor and no filters (or the key is not a chunk of an array);
 * 5. top-level `version` equal. Template names may differ.
 *
 * Returns human-readable difference lines (empty = equal), capped.
 */
import { inflateSync, gunzipSync } from "node:zlib";
import { decodeBlosc } from "../../src/lindi/codecs/blosc.ts";
import { decodeJson2 } from "../../src/lindi/codecs/json2.ts";
import { decodeInlineBytes } from "../../src/lindi/inlineBytes.ts";
import {
  parsePythonJson,
  pyNumber,
  PyFloat,
  stringifyPythonCompact,
  type PyJson,
  type PyJsonObject,
} from "../../src/lindi/pythonJson.ts";

export interface CompareLindiOptions {
  /** Applied to every URL of the actual document (after template expansion). */
  mapUrl?: (url: string) => string;
  /** Maximum number of difference lines (default 50; one more line says how many were left out). */
  maxDiffs?: number;
  /** How many example keys to list for missing/extra keys (default 10). */
  maxExamples?: number;
}

type Doc = unknown;

const METADATA_RE = /(^|\/)(\.zarray|\.zattrs|\.zgroup|zarr\.json)$/;
const CHUNK_RE = /^\d+(\.\d+)*$/;

function isObject(v: unknown): v is PyJsonObject {
  return v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);
}

function show(v: unknown, max = 120): string {
  let s: string;
  if (v === undefined) s = "(absent)";
  else {
    try {
      s = stringifyPythonCompact(v as PyJson);
    } catch {
      s = String(v);
    }
  }
  return s.length > max ? s.slice(0, max - 3) + "..." : s;
}

function numEqual(a: number | bigint, b: number | bigint): boolean {
  if (typeof a === "number" && typeof b === "number") return a === b || (a !== a && b !== b);
  return a == b; // exact mixed number/bigint comparison
}

/** First difference between two JSON values ("by value"), or undefined if equal. */
export function jsonDiff(a: unknown, b: unknown, path = ""): string | undefined {
  const at = path === "" ? "" : path + ": ";
  const na = pyNumber(a as PyJson);
  const nb = pyNumber(b as PyJson);
  if (na !== undefined || nb !== undefined) {
    if (na !== undefined && nb !== undefined && numEqual(na, nb)) return undefined;
    return `${at}actual ${show(a)}, expected ${show(b)}`;
  }
  if (a === b) return undefined;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}list of ${a.length} items, expected ${b.length}: actual ${show(a)}, expected ${show(b)}`;
    for (let i = 0; i < a.length; i++) {
      const d = jsonDiff(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return undefined;
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a).sort();
    const kb = Object.keys(b).sort();
    const missing = kb.filter((k) => !Object.prototype.hasOwnProperty.call(a, k));
    const extra = ka.filter((k) => !Object.prototype.hasOwnProperty.call(b, k));
    if (missing.length || extra.length) {
      const parts: string[] = [];
      if (missing.length) parts.push(`missing ${missing.map((k) => JSON.stringify(k)).join(", ")}`);
      if (extra.length) parts.push(`extra ${extra.map((k) => JSON.stringify(k)).join(", ")}`);
      return `${at}${parts.join("; ")} (actual ${show(a)}, expected ${show(b)})`;
    }
    for (const k of kb) {
      const d = jsonDiff(a[k], b[k], path === "" ? k : `${path}.${k}`);
      if (d) return d;
    }
    return undefined;
  }
  return `${at}actual ${show(a)}, expected ${show(b)}`;
}

interface Prepared {
  doc: PyJsonObject;
  refs: PyJsonObject;
  templates: Map<string, string>;
  problems: string[];
}

function prepare(doc: Doc, which: string): Prepared {
  const problems: string[] = [];
  let d: unknown = doc;
  if (typeof d === "string") d = parsePythonJson(d);
  if (d instanceof Uint8Array) d = parsePythonJson(new TextDecoder().decode(d));
  if (!isObject(d)) return { doc: {}, refs: {}, templates: new Map(), problems: [`${which}: document is not a JSON object`] };
  const refs = d["refs"];
  if (!isObject(refs)) problems.push(`${which}: "refs" is missing or not an object`);
  const templates = new Map<string, string>();
  const t = d["templates"];
  if (t !== undefined) {
    if (!isObject(t)) problems.push(`${which}: "templates" is not an object`);
    else
      for (const [k, v] of Object.entries(t)) {
        if (typeof v !== "string") problems.push(`${which}: templates.${k} is not a string`);
        else templates.set(k, v);
      }
  }
  return { doc: d, refs: isObject(refs) ? refs : {}, templates, problems };
}

function expandUrl(url: string, templates: Map<string, string>): string {
  if (!url.includes("{{")) return url;
  return url.replace(/\{\{([^{}]*)\}\}/g, (m, name: string) => templates.get(name.trim()) ?? m);
}

function parentZarray(refs: PyJsonObject, key: string): PyJsonObject | undefined {
  const slash = key.lastIndexOf("/");
  const last = key.slice(slash + 1);
  if (!CHUNK_RE.test(last)) return undefined;
  const zkey = slash < 0 ? ".zarray" : key.slice(0, slash) + "/.zarray";
  let z: unknown = refs[zkey];
  if (typeof z === "string") {
    try {
      z = parsePythonJson(z);
    } catch {
      return undefined;
    }
  }
  return isObject(z) ? z : undefined;
}

type Decoded = { kind: "bytes"; bytes: Uint8Array } | { kind: "json2"; items: PyJson[]; dtype: string; shape: number[] };

async function decodeCompressor(config: PyJsonObject, bytes: Uint8Array): Promise<Uint8Array> {
  const id = config["id"];
  switch (id) {
    case "blosc":
      return decodeBlosc(bytes);
    case "zlib":
      return new Uint8Array(inflateSync(bytes));
    case "gzip":
      return new Uint8Array(gunzipSync(bytes));
    default:
      throw new Error(`unsupported compressor ${show(id)}`);
  }
}

/** Inline value → bytes after the compressor (filters not yet applied). */
async function decompressInline(value: string, zarray: PyJsonObject | undefined): Promise<Uint8Array> {
  const bytes = decodeInlineBytes(value);
  if (!zarray) return bytes;
  const compressor = zarray["compressor"];
  if (isObject(compressor)) return decodeCompressor(compressor, bytes);
  if (compressor !== null && compressor !== undefined) throw new Error(`bad compressor ${show(compressor)}`);
  return bytes;
}

/** Apply the `.zarray` filters in reverse order. */
async function applyFilters(bytes: Uint8Array, zarray: PyJsonObject | undefined): Promise<Decoded> {
  const filters = zarray?.["filters"];
  if (filters === null || filters === undefined) return { kind: "bytes", bytes };
  if (!Array.isArray(filters)) throw new Error(`bad filters ${show(filters)}`);
  let out: Decoded = { kind: "bytes", bytes };
  for (let i = filters.length - 1; i >= 0; i--) {
    const f = filters[i];
    const id = isObject(f) ? f["id"] : undefined;
    if (out.kind !== "bytes") throw new Error(`filter ${show(id)} after json2`);
    if (id === "json2") {
      out = { kind: "json2", ...decodeJson2(out.bytes) };
    } else if (id === "zlib") {
      out = { kind: "bytes", bytes: new Uint8Array(inflateSync(out.bytes)) };
    } else if (id === "gzip") {
      out = { kind: "bytes", bytes: new Uint8Array(gunzipSync(out.bytes)) };
    } else if (id === "blosc") {
      out = { kind: "bytes", bytes: await decodeBlosc(out.bytes) };
    } else {
      throw new Error(`unsupported filter ${show(f)}`);
    }
  }
  return out;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.length), Buffer.from(b.buffer, b.byteOffset, b.length)) === 0;
}

function bytesDiff(a: Uint8Array, b: Uint8Array): string | undefined {
  if (a.length !== b.length) return `${a.length} bytes, expected ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) return `bytes differ first at offset ${i} (actual 0x${a[i]!.toString(16)}, expected 0x${b[i]!.toString(16)})`;
  }
  return undefined;
}

function kindOf(v: unknown): string {
  if (v === undefined) return "absent";
  if (v === null) return "null";
  if (Array.isArray(v)) return "list";
  if (v instanceof PyFloat) return "number";
  return typeof v;
}

/** Compare an actual LINDI document with an expected one (parsed values or JSON text). */
export async function compareLindi(actual: Doc, expected: Doc, opts: CompareLindiOptions = {}): Promise<string[]> {
  const maxDiffs = opts.maxDiffs ?? 50;
  const maxExamples = opts.maxExamples ?? 10;
  const mapUrl = opts.mapUrl ?? ((u: string) => u);
  const diffs: string[] = [];
  let omitted = 0;
  const add = (line: string): void => {
    if (diffs.length < maxDiffs) diffs.push(line);
    else omitted++;
  };

  const A = prepare(actual, "actual");
  const E = prepare(expected, "expected");
  for (const p of [...A.problems, ...E.problems]) add(p);

  // 5. version
  {
    const d = jsonDiff(A.doc["version"], E.doc["version"]);
    if (d) add(`version: ${d}`);
  }

  // 1. key sets
  const aKeys = Object.keys(A.refs);
  const eKeys = Object.keys(E.refs);
  const missing = eKeys.filter((k) => !Object.prototype.hasOwnProperty.call(A.refs, k)).sort();
  const extra = aKeys.filter((k) => !Object.prototype.hasOwnProperty.call(E.refs, k)).sort();
  const examples = (ks: string[]) =>
    ks.slice(0, maxExamples).map((k) => JSON.stringify(k)).join(", ") + (ks.length > maxExamples ? ", ..." : "");
  if (missing.length) add(`refs: ${missing.length} key(s) missing from actual: ${examples(missing)}`);
  if (extra.length) add(`refs: ${extra.length} extra key(s) in actual: ${examples(extra)}`);

  // 2-4. common keys
  const common = eKeys.filter((k) => Object.prototype.hasOwnProperty.call(A.refs, k)).sort();
  for (const key of common) {
    const a = A.refs[key];
    const e = E.refs[key];
    const where = `refs[${JSON.stringify(key)}]`;

    if (METADATA_RE.test(key)) {
      let pa: unknown = a;
      let pe: unknown = e;
      try {
        if (typeof pa === "string") pa = parsePythonJson(pa);
      } catch (err) {
        add(`${where}: actual metadata string is not JSON: ${(err as Error).message}`);
        continue;
      }
      try {
        if (typeof pe === "string") pe = parsePythonJson(pe);
      } catch (err) {
        add(`${where}: expected metadata string is not JSON: ${(err as Error).message}`);
        continue;
      }
      const d = jsonDiff(pa, pe);
      if (d) add(`${where}: ${d}`);
      continue;
    }

    if (Array.isArray(e) || Array.isArray(a)) {
      if (!Array.isArray(a) || !Array.isArray(e)) {
        add(`${where}: actual is ${kindOf(a)} ${show(a, 60)}, expected ${kindOf(e)} ${show(e, 60)}`);
        continue;
      }
      if (a.length !== 3 || e.length !== 3 || typeof a[0] !== "string" || typeof e[0] !== "string") {
        const d = jsonDiff(a, e);
        if (d) add(`${where}: ${d}`);
        continue;
      }
      const au = mapUrl(expandUrl(a[0], A.templates));
      const eu = expandUrl(e[0], E.templates);
      const parts: string[] = [];
      if (au !== eu) parts.push(`url ${JSON.stringify(au)}, expected ${JSON.stringify(eu)}`);
      const dOff = jsonDiff(a[1], e[1]);
      if (dOff) parts.push(`offset ${show(a[1])}, expected ${show(e[1])}`);
      const dLen = jsonDiff(a[2], e[2]);
      if (dLen) parts.push(`length ${show(a[2])}, expected ${show(e[2])}`);
      if (parts.length) add(`${where}: ${parts.join("; ")}`);
      continue;
    }

    if (typeof a === "string" && typeof e === "string") {
      if (a === e) continue; // identical inline text (decodes identically)
      const za = parentZarray(A.refs, key);
      const ze = parentZarray(E.refs, key);
      let ba: Uint8Array;
      let be: Uint8Array;
      try {
        ba = await decompressInline(a, za);
      } catch (err) {
        add(`${where}: cannot decode actual inline value: ${(err as Error).message}`);
        continue;
      }
      try {
        be = await decompressInline(e, ze);
      } catch (err) {
        add(`${where}: cannot decode expected inline value: ${(err as Error).message}`);
        continue;
      }
      // same bytes through the same filters decode to the same values
      if (sameBytes(ba, be) && jsonDiff(za?.["filters"] ?? null, ze?.["filters"] ?? null) === undefined) continue;
      let da: Decoded;
      let de: Decoded;
      try {
        da = await applyFilters(ba, za);
      } catch (err) {
        add(`${where}: cannot decode actual inline value: ${(err as Error).message}`);
        continue;
      }
      try {
        de = await applyFilters(be, ze);
      } catch (err) {
        add(`${where}: cannot decode expected inline value: ${(err as Error).message}`);
        continue;
      }
      if (da.kind === "bytes" && de.kind === "bytes") {
        const d = bytesDiff(da.bytes, de.bytes);
        if (d) add(`${where}: decoded chunk differs: ${d}`);
      } else if (da.kind === "json2" && de.kind === "json2") {
        const d =
          jsonDiff(da.items, de.items, "items") ?? jsonDiff(da.shape, de.shape, "shape") ?? jsonDiff(da.dtype, de.dtype, "dtype");
        if (d) add(`${where}: decoded json2 chunk differs: ${d}`);
      } else {
        add(`${where}: actual decodes to ${da.kind}, expected ${de.kind}`);
      }
      continue;
    }

    const d = jsonDiff(a, e);
    if (d) add(`${where}: ${kindOf(a) !== kindOf(e) ? `actual is ${kindOf(a)}, expected ${kindOf(e)}: ` : ""}${d}`);
  }

  if (omitted > 0) diffs.push(`... and ${omitted} more difference(s)`);
  return diffs;
}
