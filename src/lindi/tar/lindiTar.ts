/**
 * The `.lindi.tar` container (spec 10): a ustar archive whose first member is
 * `.tar_entry.json` (bytes 512–1535, points at the index), then
 * `.tar_index.json` (name → header offset `o`, data offset `d`, size `s` of
 * every live member), then `lindi.json` and `blobs/<key>` members.
 *
 *   LindiTarReader — random access through any ByteSource (local file, or a
 *                    remote one via HTTP ranges): 3 reads to get lindi.json.
 *   LindiTarWriter — a local file: create, add/replace/trash members, rewrite
 *                    lindi.json and the index in place or by trash + append (10.4).
 */
import { randomInt } from "node:crypto";
import { open, type FileHandle } from "node:fs/promises";
import { readFromHandle, type ByteSource } from "../../hdf5/byteSource.ts";
import { parsePythonJson, stringifyPython, type PyJson } from "../pythonJson.ts";
import {
  BLOCK,
  END_MARKER_SIZE,
  TarFormatError,
  TarNameTooLongError,
  buildHeader,
  hasUstarMagic,
  padded,
  parseHeader,
  scanTar,
  setHeaderName,
} from "./ustar.ts";
import { SerialQueue } from "../serialQueue.ts";

export const ENTRY_NAME = ".tar_entry.json";
export const INDEX_NAME = ".tar_index.json";
export const LINDI_JSON_NAME = "lindi.json";
/** Size of the entry member's data (fixed; the entry never moves). */
export const ENTRY_SIZE = 1024;
/** Initial allocation of `.tar_index.json` and `lindi.json`. */
export const INITIAL_JSON_SIZE = 8192;
/** Offsets of a freshly created archive (spec 10.2). */
export const ENTRY_DATA_OFFSET = 512;
export const INDEX_HEADER_OFFSET = 1536;
export const INDEX_DATA_OFFSET = 2048;
export const LINDI_JSON_HEADER_OFFSET = 10240;

/** One live member as listed in `.tar_index.json`: name, header offset, data offset, size. */
export interface TarIndexFile {
  n: string;
  o: number;
  d: number;
  s: number;
}

export interface TarIndex {
  files: TarIndexFile[];
}

export interface TarEntry {
  index: TarIndexFile;
}

/** The archive is not a valid `.lindi.tar` (bad entry/index, inconsistent offsets, bad refs). */
export class LindiTarError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "LindiTarError";
  }
}

/** Slack rule of 10.4: `initial` doubled until ≥ 4 × the JSON length. */
export function allocatedSize(jsonLength: number, initial = INITIAL_JSON_SIZE): number {
  let size = initial;
  while (size < 4 * jsonLength) size *= 2;
  return size;
}

/** `text` (ASCII) as bytes followed by spaces up to `size`. */
export function spacePadded(text: string, size: number): Uint8Array {
  const body = Buffer.from(text, "latin1");
  if (body.length > size) throw new LindiTarError(`JSON of ${body.length} bytes does not fit in ${size}`);
  const out = new Uint8Array(size).fill(0x20);
  out.set(body, 0);
  return out;
}

/** Decodes a space-padded JSON member (trailing spaces and, tolerantly, NULs removed). */
export function parsePaddedJson(bytes: Uint8Array, what: string): PyJson {
  let end = bytes.length;
  while (end > 0 && (bytes[end - 1] === 0x20 || bytes[end - 1] === 0 || bytes[end - 1] === 0x0a)) end--;
  const text = Buffer.from(bytes.buffer, bytes.byteOffset, end).toString("utf8");
  try {
    return parsePythonJson(text);
  } catch (e) {
    throw new LindiTarError(`${what} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
}

export function entryJson(index: TarIndexFile): string {
  return stringifyPython({ index: { d: index.d, n: index.n, o: index.o, s: index.s } });
}

export function indexJson(files: readonly TarIndexFile[]): string {
  return stringifyPython({ files: files.map((f) => ({ d: f.d, n: f.n, o: f.o, s: f.s })) });
}

function isUint(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Checks one `{n, o, d, s}` record: types, `d = o + 512`, inside `size` when known. */
function checkRecord(v: unknown, where: string, size: number | undefined): TarIndexFile {
  if (!v || typeof v !== "object" || Array.isArray(v)) throw new LindiTarError(`${where}: not an object`);
  const r = v as Record<string, unknown>;
  if (typeof r.n !== "string" || r.n === "") throw new LindiTarError(`${where}: "n" must be a non-empty string`);
  for (const k of ["o", "d", "s"] as const) {
    if (!isUint(r[k])) throw new LindiTarError(`${where} (${r.n}): "${k}" must be a non-negative integer`);
  }
  const rec: TarIndexFile = { n: r.n, o: r.o as number, d: r.d as number, s: r.s as number };
  if (rec.o % BLOCK !== 0) throw new LindiTarError(`${where} (${rec.n}): header offset ${rec.o} is not a multiple of 512`);
  if (rec.d !== rec.o + BLOCK) throw new LindiTarError(`${where} (${rec.n}): data offset ${rec.d} is not header offset + 512`);
  if (size !== undefined && rec.d + rec.s > size) {
    throw new LindiTarError(`${where} (${rec.n}): member [${rec.d}, ${rec.d + rec.s}) extends past the end of the ${size}-byte archive`);
  }
  return rec;
}

/** Parses and validates the entry (bytes 512–1535). */
export function parseEntry(bytes: Uint8Array, size: number | undefined): TarEntry {
  const v = parsePaddedJson(bytes, ENTRY_NAME);
  if (!v || typeof v !== "object" || Array.isArray(v) || !("index" in v)) {
    throw new LindiTarError(`${ENTRY_NAME} has no "index" object`);
  }
  const index = checkRecord((v as Record<string, unknown>).index, `${ENTRY_NAME} index`, size);
  if (index.n !== INDEX_NAME) throw new LindiTarError(`${ENTRY_NAME} points to ${JSON.stringify(index.n)}, not ${INDEX_NAME}`);
  return { index };
}

function sameRecord(a: TarIndexFile, b: TarIndexFile): boolean {
  return a.n === b.n && a.o === b.o && a.d === b.d && a.s === b.s;
}

/**
 * Parses and validates the index against the entry (spec 10.2): the index's
 * `.tar_index.json` record equals the entry's, `.tar_entry.json` is
 * `o 0, d 512, s 1024`; plus: names unique, records well formed and inside the
 * archive, members not overlapping.
 */
export function parseIndex(bytes: Uint8Array, entry: TarEntry, size: number | undefined): TarIndex {
  const v = parsePaddedJson(bytes, INDEX_NAME);
  const filesV = v && typeof v === "object" && !Array.isArray(v) ? (v as Record<string, unknown>).files : undefined;
  if (!Array.isArray(filesV)) throw new LindiTarError(`${INDEX_NAME} has no "files" list`);
  const files = filesV.map((f, i) => checkRecord(f, `${INDEX_NAME} files[${i}]`, size));
  const byName = new Map<string, TarIndexFile>();
  for (const f of files) {
    if (byName.has(f.n)) throw new LindiTarError(`${INDEX_NAME} lists ${JSON.stringify(f.n)} twice`);
    byName.set(f.n, f);
  }
  const e = byName.get(ENTRY_NAME);
  if (!e || e.o !== 0 || e.d !== ENTRY_DATA_OFFSET || e.s !== ENTRY_SIZE) {
    throw new LindiTarError(`${INDEX_NAME}: ${ENTRY_NAME} must be listed with o 0, d 512, s 1024`);
  }
  const self = byName.get(INDEX_NAME);
  if (!self || !sameRecord(self, entry.index)) {
    throw new LindiTarError(`${INDEX_NAME}: its own record does not match the one in ${ENTRY_NAME}`);
  }
  const sorted = [...files].sort((a, b) => a.o - b.o);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1]!;
    if (sorted[i]!.o < prev.d + padded(prev.s)) {
      throw new LindiTarError(`${INDEX_NAME}: members ${prev.n} and ${sorted[i]!.n} overlap`);
    }
  }
  return { files };
}

/** Normalizes a container-relative ref path: `./blobs/x` → `blobs/x`. Rejects `..`, empty and absolute paths. */
export function memberNameOfRef(url: string): string {
  if (!url.startsWith("./")) throw new LindiTarError(`not a container-relative ref: ${url}`);
  const name = url.slice(2);
  const parts = name.split("/");
  if (name === "" || name.startsWith("/") || parts.some((p) => p === ".." || p === "." || p === "")) {
    throw new LindiTarError(`invalid container-relative ref: ${url}`);
  }
  return name;
}

/** Absolute byte range of `[off, off+len)` inside a member, with the bounds checks of 10.3. */
export function memberRange(rec: TarIndexFile, off: number, len: number): { offset: number; length: number } {
  if (!isUint(off) || !isUint(len)) throw new LindiTarError(`invalid range (${off}, ${len}) in ${rec.n}`);
  if (off + len > rec.s) {
    throw new LindiTarError(`ref [${off}, ${off + len}) extends past the end of member ${rec.n} (${rec.s} bytes)`);
  }
  return { offset: rec.d + off, length: len };
}

async function readExactly(source: ByteSource, offset: number, length: number, what: string): Promise<Uint8Array> {
  const b = await source.read(offset, length);
  if (b.length !== length) throw new LindiTarError(`${what}: archive truncated (wanted ${length} bytes at ${offset}, got ${b.length})`);
  return b;
}

export interface LindiTarReaderOptions {
  /** Require a `lindi.json` member (default true). */
  requireLindiJson?: boolean;
}

/**
 * Read-only random access to a `.lindi.tar` through a ByteSource. Opening
 * reads the entry [512, 1536) and the index — two reads; `readLindiJson()`
 * is the third (spec 10.3).
 */
export class LindiTarReader {
  private readonly byName: Map<string, TarIndexFile>;

  private constructor(
    readonly source: ByteSource,
    readonly entry: TarEntry,
    readonly index: TarIndex,
  ) {
    this.byName = new Map(index.files.map((f) => [f.n, f]));
  }

  static async open(source: ByteSource, opts: LindiTarReaderOptions = {}): Promise<LindiTarReader> {
    const size = Number.isFinite(source.size) && source.size > 0 ? source.size : undefined;
    if (size !== undefined && size < INDEX_HEADER_OFFSET) throw new LindiTarError(`archive of ${size} bytes is too short for a .lindi.tar`);
    const entry = parseEntry(await readExactly(source, ENTRY_DATA_OFFSET, ENTRY_SIZE, ENTRY_NAME), size);
    const index = parseIndex(await readExactly(source, entry.index.d, entry.index.s, INDEX_NAME), entry, size);
    const reader = new LindiTarReader(source, entry, index);
    if ((opts.requireLindiJson ?? true) && !reader.has(LINDI_JSON_NAME)) {
      throw new LindiTarError(`${INDEX_NAME} lists no ${LINDI_JSON_NAME}`);
    }
    return reader;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  member(name: string): TarIndexFile | undefined {
    return this.byName.get(name);
  }

  /** Absolute range in the archive of `[off, off+len)` of member `name` (bounds-checked). */
  locate(name: string, off: number, len: number): { offset: number; length: number } {
    const rec = this.byName.get(name);
    if (!rec) throw new LindiTarError(`no member ${JSON.stringify(name)} in the archive`);
    return memberRange(rec, off, len);
  }

  /** Absolute range of a `["./x", off, len]` ref. */
  locateRef(url: string, off: number, len: number): { member: string; offset: number; length: number } {
    const member = memberNameOfRef(url);
    return { member, ...this.locate(member, off, len) };
  }

  async read(name: string, off = 0, len?: number): Promise<Uint8Array> {
    const rec = this.byName.get(name);
    if (!rec) throw new LindiTarError(`no member ${JSON.stringify(name)} in the archive`);
    const r = memberRange(rec, off, len ?? rec.s - off);
    return readExactly(this.source, r.offset, r.length, name);
  }

  async readLindiJsonText(): Promise<string> {
    const b = await this.read(LINDI_JSON_NAME);
    let end = b.length;
    while (end > 0 && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
    return Buffer.from(b.buffer, b.byteOffset, end).toString("utf8");
  }

  async readLindiJson(): Promise<PyJson> {
    return parsePaddedJson(await this.read(LINDI_JSON_NAME), LINDI_JSON_NAME);
  }
}

/** A ByteSource over an open file handle whose size changes while writing. */
class HandleSource implements ByteSource {
  constructor(
    private readonly handle: FileHandle,
    public size: number,
  ) {}
  read(offset: number, length: number): Promise<Uint8Array> {
    return readFromHandle(this.handle, this.size, offset, length);
  }
}

const RESERVED = new Set([ENTRY_NAME, INDEX_NAME]);
const FILL_CHUNK = 1 << 20;

function randomSuffix(): string {
  let s = "";
  for (let i = 0; i < 10; i++) s += String.fromCharCode(0x61 + randomInt(26));
  return s;
}

export interface CreateLindiTarOptions {
  /** Fail if the file exists (default false: truncate it). */
  exclusive?: boolean;
}

/**
 * A local `.lindi.tar` opened for writing. Members are appended immediately
 * (the end marker moves after each); `lindi.json` and the index are rewritten
 * on `flush()` / `close()`, in place when they fit in their allocation, else
 * the old member is trashed and a new one appended (spec 10.4).
 *
 * Operations are serialized internally; the writer is not safe against other
 * processes writing the same file.
 */
export class LindiTarWriter {
  private files: TarIndexFile[];
  private byName: Map<string, TarIndexFile>;
  private indexDirty = false;
  private pendingLindiJson: string | undefined;
  private readonly queue = new SerialQueue();
  private closed = false;
  private readonly source: HandleSource;

  private constructor(
    readonly path: string,
    private readonly handle: FileHandle,
    files: TarIndexFile[],
    /** Offset of the end marker, where the next member goes. */
    private end: number,
    size: number,
  ) {
    this.files = files;
    this.byName = new Map(files.map((f) => [f.n, f]));
    this.source = new HandleSource(handle, size);
  }

  /** Creates a new archive holding `lindiJson` (spec 10.2 layout). */
  static async create(path: string, lindiJson: string, opts: CreateLindiTarOptions = {}): Promise<LindiTarWriter> {
    const handle = await open(path, opts.exclusive ? "wx+" : "w+");
    try {
      const indexRec: TarIndexFile = { n: INDEX_NAME, o: INDEX_HEADER_OFFSET, d: INDEX_DATA_OFFSET, s: INITIAL_JSON_SIZE };
      const ljBytes = Buffer.from(lindiJson, "utf8");
      const ljSize = allocatedSize(ljBytes.length);
      const files: TarIndexFile[] = [
        { n: ENTRY_NAME, o: 0, d: ENTRY_DATA_OFFSET, s: ENTRY_SIZE },
        indexRec,
        { n: LINDI_JSON_NAME, o: LINDI_JSON_HEADER_OFFSET, d: LINDI_JSON_HEADER_OFFSET + BLOCK, s: ljSize },
      ];
      const end = LINDI_JSON_HEADER_OFFSET + BLOCK + padded(ljSize);
      const buf = new Uint8Array(end + END_MARKER_SIZE);
      buf.set(buildHeader(ENTRY_NAME, ENTRY_SIZE), 0);
      buf.set(spacePadded(entryJson(indexRec), ENTRY_SIZE), ENTRY_DATA_OFFSET);
      buf.set(buildHeader(INDEX_NAME, INITIAL_JSON_SIZE), INDEX_HEADER_OFFSET);
      buf.set(spacePadded(indexJson(files), INITIAL_JSON_SIZE), INDEX_DATA_OFFSET);
      buf.set(buildHeader(LINDI_JSON_NAME, ljSize), LINDI_JSON_HEADER_OFFSET);
      const lj = new Uint8Array(ljSize).fill(0x20);
      lj.set(ljBytes, 0);
      buf.set(lj, LINDI_JSON_HEADER_OFFSET + BLOCK);
      await writeAll(handle, buf, 0);
      return new LindiTarWriter(path, handle, files, end, buf.length);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Opens an existing archive for update (validates entry and index, finds the end marker). */
  static async open(path: string): Promise<LindiTarWriter> {
    const handle = await open(path, "r+");
    try {
      const { size } = await handle.stat();
      const src = new HandleSource(handle, size);
      if (!hasUstarMagic(await src.read(0, BLOCK))) throw new LindiTarError(`${path} is not a ustar archive`);
      const reader = await LindiTarReader.open(src, { requireLindiJson: false });
      // live members end somewhere; trashed members may follow: walk headers to the end marker
      let start = 0;
      for (const f of reader.index.files) start = Math.max(start, f.d + padded(f.s));
      const { end } = await scanTar((o, l) => src.read(o, l), size, start);
      return new LindiTarWriter(path, handle, reader.index.files.map((f) => ({ ...f })), end, size);
    } catch (e) {
      await handle.close();
      throw e;
    }
  }

  /** Live members (index order). */
  get members(): readonly TarIndexFile[] {
    return this.files;
  }

  has(name: string): boolean {
    return this.byName.has(name);
  }

  member(name: string): TarIndexFile | undefined {
    return this.byName.get(name);
  }

  /** Current archive size (end marker included). */
  get size(): number {
    return this.source.size;
  }

  /** A ByteSource view of the archive being written (reads see flushed and appended data). */
  get byteSource(): ByteSource {
    return this.source;
  }

  /** Bytes of a live member (or a slice of it). */
  readMember(name: string, off = 0, len?: number): Promise<Uint8Array> {
    return this.run(async () => {
      const rec = this.byName.get(name);
      if (!rec) throw new LindiTarError(`no member ${JSON.stringify(name)} in the archive`);
      const r = memberRange(rec, off, len ?? rec.s - off);
      return readExactly(this.source, r.offset, r.length, name);
    });
  }

  /** Appends a new member; the name must not be live already. */
  addMember(name: string, data: Uint8Array): Promise<TarIndexFile> {
    return this.run(async () => {
      this.checkUserName(name);
      if (this.byName.has(name)) throw new LindiTarError(`member ${JSON.stringify(name)} already exists`);
      return this.append(name, data);
    });
  }

  /**
   * Appends `data` as `blobs/<key>` (or `blobs/<key>.v2`, `.v3`, … when that
   * name is live) and returns the member name; the ref is `["./" + name, 0, data.length]`.
   */
  addBlob(key: string, data: Uint8Array): Promise<string> {
    return this.run(async () => {
      const base = `blobs/${key}`;
      let name = base;
      for (let v = 2; this.byName.has(name); v++) name = `${base}.v${v}`;
      this.checkUserName(name);
      await this.append(name, data);
      return name;
    });
  }

  /** Replaces a member's content: in place when the size is unchanged, else trash + append. */
  replaceMember(name: string, data: Uint8Array): Promise<TarIndexFile> {
    return this.run(async () => {
      this.checkUserName(name);
      const rec = this.byName.get(name);
      if (!rec) throw new LindiTarError(`no member ${JSON.stringify(name)} in the archive`);
      if (rec.s === data.length) {
        await writeAll(this.handle, data, rec.d);
        return rec;
      }
      const added = await this.append(name, data, /* replacing */ true);
      await this.trashRecord(rec);
      return added;
    });
  }

  /** Trashes a live member (data overwritten with `-`, header renamed to `.trash/<name>.<random>`). Returns the trash name. */
  trash(name: string): Promise<string> {
    return this.run(async () => {
      this.checkUserName(name);
      const rec = this.byName.get(name);
      if (!rec) throw new LindiTarError(`no member ${JSON.stringify(name)} in the archive`);
      this.dropRecord(rec);
      return this.trashRecord(rec);
    });
  }

  /** Sets the new `lindi.json` text; written by the next `flush()`. */
  setLindiJson(text: string): void {
    if (this.closed) throw new LindiTarError("archive is closed");
    this.pendingLindiJson = text;
  }

  /** Writes a pending `lindi.json` and a changed index (and the entry if the index moved). */
  flush(): Promise<void> {
    return this.run(() => this.flushNow());
  }

  /** Flushes and closes the file. */
  async close(): Promise<void> {
    if (this.closed) return;
    try {
      await this.flush();
    } finally {
      this.closed = true;
      await this.queue.idle();
      await this.handle.close();
    }
  }

  // ---- internals -----------------------------------------------------------

  private run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new LindiTarError("archive is closed"));
    return this.queue.run(fn);
  }

  private checkUserName(name: string): void {
    if (RESERVED.has(name)) throw new LindiTarError(`${name} is managed by the archive itself`);
    if (name.startsWith(".trash/")) throw new LindiTarError(`names under .trash/ are reserved`);
  }

  private async flushNow(): Promise<void> {
    if (this.pendingLindiJson !== undefined) {
      const text = this.pendingLindiJson;
      const bytes = Buffer.from(text, "utf8");
      const rec = this.byName.get(LINDI_JSON_NAME);
      if (rec && bytes.length <= rec.s) {
        await writeAll(this.handle, paddedBytes(bytes, rec.s), rec.d);
      } else {
        const size = allocatedSize(bytes.length);
        await this.append(LINDI_JSON_NAME, paddedBytes(bytes, size), true);
        if (rec) await this.trashRecord(rec);
      }
      this.pendingLindiJson = undefined;
    }
    if (this.indexDirty) await this.writeIndex();
  }

  private async writeIndex(): Promise<void> {
    const old = this.byName.get(INDEX_NAME);
    if (!old) throw new LindiTarError(`${INDEX_NAME} missing from the in-memory index`);
    const text = indexJson(this.files);
    if (text.length <= old.s) {
      await writeAll(this.handle, spacePadded(text, old.s), old.d);
      this.indexDirty = false;
      return;
    }
    // moves: the new index lists itself at the end, not the old one. Its size is
    // computed as lindi does, from the JSON without its own record (which then
    // fits easily: the allocation is ≥ 4× that length).
    this.dropRecord(old);
    const o = this.end;
    let s = allocatedSize(indexJson(this.files).length);
    while (indexJson([...this.files, { n: INDEX_NAME, o, d: o + BLOCK, s }]).length > s) s *= 2;
    const rec: TarIndexFile = { n: INDEX_NAME, o, d: o + BLOCK, s };
    this.files.push(rec);
    this.byName.set(INDEX_NAME, rec);
    await this.appendAt(rec, spacePadded(indexJson(this.files), s));
    // entry → new index (the entry never moves), then the old index becomes trash
    await writeAll(this.handle, spacePadded(entryJson(rec), ENTRY_SIZE), ENTRY_DATA_OFFSET);
    await this.trashRecord(old);
    this.indexDirty = false;
  }

  /** Appends a member at the end marker; with `replacing`, an existing live record of that name is dropped first. */
  private async append(name: string, data: Uint8Array, replacing = false): Promise<TarIndexFile> {
    const prev = this.byName.get(name);
    if (prev) {
      if (!replacing) throw new LindiTarError(`member ${JSON.stringify(name)} already exists`);
      this.dropRecord(prev);
    }
    const o = this.end;
    const rec: TarIndexFile = { n: name, o, d: o + BLOCK, s: data.length };
    const header = buildHeader(name, data.length); // validates name and size before anything is written
    await this.appendAt(rec, data, header);
    this.files.push(rec);
    this.byName.set(name, rec);
    this.indexDirty = true;
    return rec;
  }

  private async appendAt(rec: TarIndexFile, data: Uint8Array, header = buildHeader(rec.n, rec.s)): Promise<void> {
    const tail = padded(rec.s) - rec.s + END_MARKER_SIZE;
    if (data.length <= FILL_CHUNK) {
      const buf = new Uint8Array(BLOCK + data.length + tail);
      buf.set(header, 0);
      buf.set(data, BLOCK);
      await writeAll(this.handle, buf, rec.o);
    } else {
      await writeAll(this.handle, header, rec.o);
      await writeAll(this.handle, data, rec.d);
      await writeAll(this.handle, new Uint8Array(tail), rec.d + rec.s);
    }
    this.end = rec.d + padded(rec.s);
    this.source.size = Math.max(this.source.size, this.end + END_MARKER_SIZE);
  }

  private dropRecord(rec: TarIndexFile): void {
    const i = this.files.indexOf(rec);
    if (i >= 0) this.files.splice(i, 1);
    if (this.byName.get(rec.n) === rec) this.byName.delete(rec.n);
    this.indexDirty = true;
  }

  /** Overwrites a (dropped) member's data with `-` and renames its header to `.trash/<name>.<10 a–z>`. */
  private async trashRecord(rec: TarIndexFile): Promise<string> {
    const header = await readExactly(this.source, rec.o, BLOCK, rec.n);
    let parsed;
    try {
      parsed = parseHeader(header);
    } catch (e) {
      throw new LindiTarError(`header of ${rec.n} at ${rec.o} is invalid: ${(e as Error).message}`, { cause: e });
    }
    if (parsed.name !== rec.n || parsed.size !== rec.s) {
      throw new LindiTarError(`header at ${rec.o} is ${parsed.name} (${parsed.size} bytes), index says ${rec.n} (${rec.s} bytes)`);
    }
    const suffix = randomSuffix();
    let trashName = `.trash/${rec.n}.${suffix}`;
    try {
      setHeaderName(header, trashName);
    } catch (e) {
      if (!(e instanceof TarNameTooLongError)) throw e;
      trashName = `.trash/${suffix}`; // the long name does not fit any more: keep only the random part
      setHeaderName(header, trashName);
    }
    const dash = new Uint8Array(Math.min(rec.s, FILL_CHUNK)).fill(0x2d);
    for (let done = 0; done < rec.s; done += dash.length) {
      await writeAll(this.handle, dash.subarray(0, Math.min(dash.length, rec.s - done)), rec.d + done);
    }
    await writeAll(this.handle, header, rec.o);
    return trashName;
  }
}

function paddedBytes(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(size).fill(0x20);
  out.set(bytes, 0);
  return out;
}

async function writeAll(handle: FileHandle, data: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < data.length) {
    const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
    if (bytesWritten === 0) throw new TarFormatError("write made no progress");
    done += bytesWritten;
  }
}
