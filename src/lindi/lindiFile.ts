/**
 * Opening a LINDI file in any container (spec 9.1) and resolving its refs (3.3, 3.4, 10.3, 11).
 *
 *   const f = await openLindiFile("x.lindi.tar" | "https://…/x.lindi.json" | "dir.lindi.d");
 *   f.doc.refs; f.resolveRef(["{{u1}}", 100, 20]); await f.getBytes("acquisition/ts/data/0");
 *
 * Detection by content: a local directory → `.lindi.d`; ≥ 512 bytes with `ustar\0`
 * at 257 → `.lindi.tar`; otherwise a NUL byte in the first 512 bytes → error; else JSON.
 * Remote files are read with HTTP Range requests: the probe of the HTTP source, bytes
 * 0–511, then for a tar the entry, the index and `lindi.json` (one request each);
 * for JSON the rest of the file (one request).
 *
 * Refs `[url, offset, length]` (after `{{template}}` expansion) resolve to:
 *   http(s)://… → a byte range of that URL;
 *   ./name      → a member of the tar (offset relative to the member's data, bounds-checked)
 *                 or a file inside the `.lindi.d` (bounds-checked, no `..`);
 *                 in a plain `.lindi.json` this is an error, as in lindi;
 *   anything else (or file://) → a local file path, relative to the process CWD.
 */
import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { FileByteSource, type ByteSource } from "../hdf5/byteSource.ts";
import { HttpClient, openHttpSource, type HttpByteSource, type OpenHttpSourceOptions } from "../hdf5/httpByteSource.ts";
import { decodeInlineBytes } from "./inlineBytes.ts";
import { parsePythonJson, stringifyPython, stringifyPythonCompact, type PyJson } from "./pythonJson.ts";
import { LindiTarReader, LindiTarError, LINDI_JSON_NAME, memberNameOfRef } from "./tar/lindiTar.ts";
import { dirRefPath, readFileRange } from "./tar/lindiDir.ts";
import { BLOCK, hasUstarMagic } from "./tar/ustar.ts";

export type LindiContainer = "json" | "tar" | "dir";

/**
 * The RFS document of a LINDI file. Unknown top-level keys are kept at run time
 * (and written back by `serializeLindiDoc`) but not typed. `LindiDocument` fits.
 */
export interface LindiDoc {
  refs: Record<string, PyJson>;
  templates?: Record<string, string>;
  version?: PyJson;
  generationMetadata?: PyJson;
}

/** A `[url, offset, length]` ref in a given place. */
export type RefLocation =
  | { kind: "http"; url: string; offset: number; length: number }
  | {
      kind: "tar";
      /** Path or URL of the `.lindi.tar`. */
      container: string;
      member: string;
      /** Absolute offset in the tar (member data offset + ref offset). */
      offset: number;
      length: number;
      /** The ref's own offset, relative to the member. */
      memberOffset: number;
    }
  | { kind: "dir"; container: string; path: string; offset: number; length: number }
  | { kind: "local"; path: string; offset: number; length: number };

export class LindiFileError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LindiFileError";
  }
}

const META_SUFFIXES = [".zattrs", ".zgroup", ".zarray", "zarr.json"];

function isPlainObject(v: unknown): v is Record<string, PyJson> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

function isInt(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v);
}

/**
 * Validates a parsed RFS the way lindi's reader does (spec 2): `refs` must exist;
 * each value a string, an object, or `[string, int, int]`; `templates` values strings.
 */
export function validateLindiDoc(v: PyJson, where = "LINDI file"): LindiDoc {
  if (!isPlainObject(v)) throw new LindiFileError(`${where}: top level is not a JSON object`);
  const refs = v.refs;
  if (!isPlainObject(refs)) throw new LindiFileError(`${where}: missing "refs" object`);
  for (const [k, val] of Object.entries(refs)) {
    if (typeof val === "string" || isPlainObject(val)) continue;
    if (Array.isArray(val)) {
      if (val.length === 3 && typeof val[0] === "string" && isInt(val[1]) && isInt(val[2]) && val[1] >= 0 && val[2] >= 0) continue;
      throw new LindiFileError(`${where}: ref ${JSON.stringify(k)} must be [url, offset, length] (got a ${val.length}-element list)`);
    }
    throw new LindiFileError(`${where}: ref ${JSON.stringify(k)} has an invalid value`);
  }
  if (v.templates !== undefined) {
    if (!isPlainObject(v.templates)) throw new LindiFileError(`${where}: "templates" is not an object`);
    for (const [k, t] of Object.entries(v.templates)) {
      if (typeof t !== "string") throw new LindiFileError(`${where}: template ${JSON.stringify(k)} is not a string`);
    }
  }
  return v as unknown as LindiDoc;
}

/** Parses `lindi.json` text (trailing spaces, as in a tar, are fine) and validates it. */
export function parseLindiDoc(text: string, where?: string): LindiDoc {
  let v: PyJson;
  try {
    v = parsePythonJson(text);
  } catch (e) {
    throw new LindiFileError(`${where ?? "LINDI file"} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  return validateLindiDoc(v, where);
}

/** `json.dumps(doc, indent=2, sort_keys=True)` without undefined members. */
export function serializeLindiDoc(doc: LindiDoc): string {
  const out: Record<string, PyJson> = {};
  for (const [k, v] of Object.entries(doc) as [string, PyJson | undefined][]) if (v !== undefined) out[k] = v;
  return stringifyPython(out);
}

/** Expands `{{name}}` in a ref URL; unknown template names are an error. */
export function expandTemplates(url: string, templates: Record<string, string> | undefined): string {
  if (!url.includes("{{")) return url;
  return url.replace(/\{\{([^{}]*)\}\}/g, (_m, name: string) => {
    const t = templates?.[name];
    if (t === undefined) throw new LindiFileError(`ref URL ${url} uses unknown template ${JSON.stringify(name)}`);
    return t;
  });
}

export interface OpenLindiFileOptions {
  /** HTTP client for remote files and http(s) refs; one is created (and closed with the file) when absent. */
  httpClient?: HttpClient;
  /** Options for every HTTP source opened. */
  httpSourceOptions?: OpenHttpSourceOptions;
}

function isHttpUrl(s: string): boolean {
  return /^https?:\/\//i.test(s);
}

function localPathOf(s: string): string {
  return /^file:\/\//i.test(s) ? fileURLToPath(s) : s;
}

async function readExactly(source: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  const b = await source.read(offset, length);
  if (b.length !== length) throw new LindiFileError(`${what}: wanted ${length} bytes at ${offset}, got ${b.length}`);
  return b;
}

/** An open LINDI file: its document and how to get the bytes behind each key. */
export class LindiFile {
  private readonly http = new Map<string, Promise<HttpByteSource>>();
  private readonly local = new Map<string, Promise<FileByteSource>>();
  private closed = false;

  private constructor(
    readonly container: LindiContainer,
    /** Path or URL the file was opened from. */
    readonly location: string,
    readonly doc: LindiDoc,
    private readonly source: ByteSource | undefined,
    /** The tar reader (tar container only). */
    readonly tar: LindiTarReader | undefined,
    private client: HttpClient | undefined,
    private ownsClient: boolean,
    private readonly sourceOpts: OpenHttpSourceOptions,
  ) {}

  get remote(): boolean {
    return isHttpUrl(this.location);
  }

  /** @internal use `openLindiFile` */
  static async open(pathOrUrl: string, opts: OpenLindiFileOptions = {}): Promise<LindiFile> {
    const sourceOpts = opts.httpSourceOptions ?? {};
    if (isHttpUrl(pathOrUrl)) {
      const ownsClient = !opts.httpClient;
      const client = opts.httpClient ?? new HttpClient();
      let source: HttpByteSource | undefined;
      try {
        source = await openHttpSource(pathOrUrl, client, sourceOpts);
        return await LindiFile.fromSource(pathOrUrl, source, client, ownsClient, sourceOpts);
      } catch (e) {
        await source?.close();
        if (ownsClient) await client.close();
        throw e;
      }
    }
    const p = localPathOf(pathOrUrl);
    const st = await stat(p);
    if (st.isDirectory()) {
      const text = await readFile(path.join(p, LINDI_JSON_NAME), "utf8");
      const doc = parseLindiDoc(text, path.join(p, LINDI_JSON_NAME));
      return new LindiFile("dir", p, doc, undefined, undefined, opts.httpClient, false, sourceOpts);
    }
    const source = await FileByteSource.open(p);
    try {
      return await LindiFile.fromSource(p, source, opts.httpClient, false, sourceOpts);
    } catch (e) {
      await source.close();
      throw e;
    }
  }

  private static async fromSource(
    location: string,
    source: ByteSource,
    client: HttpClient | undefined,
    ownsClient: boolean,
    sourceOpts: OpenHttpSourceOptions,
  ): Promise<LindiFile> {
    const head = await readExactly(source, 0, Math.min(BLOCK, source.size), location);
    if (source.size >= BLOCK && hasUstarMagic(head)) {
      const tar = await LindiTarReader.open(source);
      const doc = parseLindiDoc(await tar.readLindiJsonText(), `${location} (lindi.json)`);
      return new LindiFile("tar", location, doc, source, tar, client, ownsClient, sourceOpts);
    }
    if (head.includes(0)) {
      throw new LindiFileError(`${location} is neither a .lindi.tar (no ustar header) nor JSON (NUL bytes in the first 512 bytes)`);
    }
    let whole = head;
    if (source.size > head.length) {
      // the rest of the JSON (the first 512 bytes are already here)
      const rest = await readExactly(source, head.length, source.size - head.length, location);
      whole = new Uint8Array(source.size);
      whole.set(head, 0);
      whole.set(rest, head.length);
    }
    const doc = parseLindiDoc(Buffer.from(whole.buffer, whole.byteOffset, whole.byteLength).toString("utf8"), location);
    await source.close?.();
    return new LindiFile("json", location, doc, undefined, undefined, client, ownsClient, sourceOpts);
  }

  /** Where the bytes of a `[url, offset, length]` ref are (templates expanded, `./` resolved, bounds-checked for tars). */
  resolveRef(ref: PyJson): RefLocation {
    if (!Array.isArray(ref) || ref.length !== 3 || typeof ref[0] !== "string" || !isInt(ref[1]) || !isInt(ref[2]) || ref[1] < 0 || ref[2] < 0) {
      throw new LindiFileError(`not a [url, offset, length] ref: ${stringifyPythonCompact(ref)}`);
    }
    const url = expandTemplates(ref[0], this.doc.templates);
    const offset = ref[1];
    const length = ref[2];
    if (isHttpUrl(url)) return { kind: "http", url, offset, length };
    if (url.startsWith("./")) {
      if (this.container === "tar") {
        const r = this.tar!.locateRef(url, offset, length);
        return { kind: "tar", container: this.location, member: r.member, offset: r.offset, length, memberOffset: offset };
      }
      if (this.container === "dir") {
        return { kind: "dir", container: this.location, path: dirRefPath(this.location, url), offset, length };
      }
      throw new LindiFileError(`Cannot resolve relative path ${url} without source file type (plain .lindi.json)`);
    }
    return { kind: "local", path: path.resolve(localPathOf(url)), offset, length };
  }

  /** The bytes at a resolved location. */
  async readLocation(loc: RefLocation): Promise<Uint8Array> {
    this.checkOpen();
    switch (loc.kind) {
      case "http": {
        const src = await this.httpSource(loc.url);
        return readExactly(src, loc.offset, loc.length, loc.url);
      }
      case "tar":
        if (this.container !== "tar" || !this.source) throw new LindiFileError("tar location outside a tar container");
        return readExactly(this.source, loc.offset, loc.length, `${loc.container}:${loc.member}`);
      case "dir":
        return readFileRange(loc.path, loc.offset, loc.length);
      case "local": {
        const src = await this.localSource(loc.path);
        if (loc.offset + loc.length > src.size) {
          throw new LindiFileError(`ref [${loc.offset}, ${loc.offset + loc.length}) extends past the end of ${loc.path} (${src.size} bytes)`);
        }
        return readExactly(src, loc.offset, loc.length, loc.path);
      }
    }
  }

  /** The bytes of a `[url, offset, length]` ref. */
  readRef(ref: PyJson): Promise<Uint8Array> {
    return this.readLocation(this.resolveRef(ref));
  }

  /**
   * A range reader `(url, offset, length) → bytes` for ref stores: `./` URLs are
   * read inside this container (bounds-checked), others as in `readRef`.
   */
  rangeReader(): (url: string, offset: number, length: number) => Promise<Uint8Array> {
    return (url, offset, length) => this.readRef([url, offset, length]);
  }

  /** The bytes stored under `key` (inline string, JSON metadata object, or ref); undefined when absent. */
  async getBytes(key: string): Promise<Uint8Array | undefined> {
    const v = this.doc.refs[key];
    if (v === undefined) return undefined;
    if (typeof v === "string") return decodeInlineBytes(v);
    if (Array.isArray(v)) return this.readRef(v);
    return new Uint8Array(Buffer.from(stringifyPythonCompact(v), "latin1"));
  }

  /** The JSON metadata under a `.zarray` / `.zattrs` / `.zgroup` key (objects, or strings in the older style). */
  getJson(key: string): PyJson | undefined {
    const v = this.doc.refs[key];
    if (v === undefined) return undefined;
    if (typeof v === "string" && META_SUFFIXES.some((s) => key.endsWith(s))) return parsePythonJson(Buffer.from(decodeInlineBytes(v)).toString("utf8"));
    return v;
  }

  /**
   * The document with refs that make sense outside this container: for a
   * remote tar, `./` refs become `[tar_url, member_d + off, len]` (spec 10.5);
   * for a local tar or `.lindi.d` with `./` refs this is refused.
   */
  portableDoc(): LindiDoc {
    const refs: Record<string, PyJson> = {};
    for (const [k, v] of Object.entries(this.doc.refs)) {
      if (Array.isArray(v) && typeof v[0] === "string" && v[0].startsWith("./")) {
        if (this.container === "json") throw new LindiFileError(`ref ${k} is relative (${v[0]}) in a plain JSON file`);
        if (this.container === "dir" || !this.remote) {
          throw new LindiFileError(`cannot export a local ${this.container === "dir" ? ".lindi.d" : ".lindi.tar"}: ref ${k} points inside it`);
        }
        const loc = this.resolveRef(v);
        refs[k] = [this.location, loc.offset, loc.length];
      } else {
        refs[k] = v;
      }
    }
    return { ...this.doc, refs };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.source?.close?.();
    for (const p of this.http.values()) await p.then((s) => s.close(), () => undefined);
    for (const p of this.local.values()) await p.then((s) => s.close(), () => undefined);
    if (this.ownsClient) await this.client?.close();
  }

  private checkOpen(): void {
    if (this.closed) throw new LindiFileError("LINDI file is closed");
  }

  private httpSource(url: string): Promise<HttpByteSource> {
    let p = this.http.get(url);
    if (!p) {
      if (!this.client) {
        this.client = new HttpClient();
        this.ownsClient = true;
      }
      p = openHttpSource(url, this.client, this.sourceOpts);
      p.catch(() => this.http.delete(url));
      this.http.set(url, p);
    }
    return p;
  }

  private localSource(file: string): Promise<FileByteSource> {
    let p = this.local.get(file);
    if (!p) {
      p = FileByteSource.open(file);
      p.catch(() => this.local.delete(file));
      this.local.set(file, p);
    }
    return p;
  }
}

/** Opens a `.lindi.json`, `.lindi.tar` or `.lindi.d` from a local path or an http(s) URL (container detected by content). */
export function openLindiFile(pathOrUrl: string, opts: OpenLindiFileOptions = {}): Promise<LindiFile> {
  return LindiFile.open(pathOrUrl, opts);
}

export { LindiTarError, memberNameOfRef };
