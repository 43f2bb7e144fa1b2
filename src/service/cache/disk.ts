/**
 * The disk tier: one file per entry under `<dir>/entries/<k0k1>/<key>.lindi`,
 * bounded by bytes with LRU eviction.
 *
 * - Writes go to `<dir>/tmp/` and are renamed into place after an fsync, so a
 *   file under `entries/` is always complete; a crash mid-write leaves only a
 *   temporary file, which the next start deletes.
 * - The index (key → size, last use) is the directory itself: rebuilt at start
 *   from the files and their mtimes (a hit touches the mtime), so it survives
 *   restarts and cannot disagree with what is on disk.
 * - Every read checks magic, lengths and sha256 of each part; a damaged file
 *   (e.g. a file system that lost data on power failure) is deleted and
 *   counts as a miss.
 *
 * File layout: "LNDCACH1" | uint32 BE header length | header JSON
 * ({meta, parts: [[encoding, length, sha256]...]}) | identity | gzip | br.
 *
 * One process per cache directory.
 */
import { randomBytes, createHash } from "node:crypto";
import { mkdir, open, readdir, readFile, rm, stat, unlink, utimes } from "node:fs/promises";
import path from "node:path";
import { commitTemporary } from "../../jobs/atomic.ts";
import { ENCODINGS, type CacheEntry, type Encoding, type EntryMeta } from "./entry.ts";

const MAGIC = Buffer.from("LNDCACH1", "ascii");
const SUFFIX = ".lindi";

export interface DiskCacheOptions {
  dir: string;
  maxBytes: number;
  /** Test hook: called during a write, after part of the bytes ("partial") and before the rename ("written"). */
  onWrite?: (stage: "partial" | "written", tmpPath: string) => void | Promise<void>;
  /** Called when a file is found damaged and dropped. */
  onCorrupt?: (key: string, reason: string) => void;
}

interface IndexRecord {
  size: number;
}

type Header = { meta: EntryMeta; parts: Array<[Encoding, number, string]> };

function sha256(b: Uint8Array): string {
  return createHash("sha256").update(b).digest("hex");
}

export function encodeEntry(e: CacheEntry): Buffer[] {
  const parts = ENCODINGS.map((enc) => [enc, e[enc].byteLength, sha256(e[enc])] as [Encoding, number, string]);
  const header = Buffer.from(JSON.stringify({ meta: e.meta, parts } satisfies Header), "utf8");
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.byteLength);
  return [MAGIC, len, header, e.identity, e.gzip, e.br];
}

/** Parses and verifies a stored file; throws with the reason when damaged. */
export function decodeEntry(buf: Buffer, expectKey?: string): CacheEntry {
  if (buf.byteLength < 12 || !buf.subarray(0, 8).equals(MAGIC)) throw new Error("bad magic");
  const hlen = buf.readUInt32BE(8);
  if (12 + hlen > buf.byteLength) throw new Error("truncated header");
  let header: Header;
  try {
    header = JSON.parse(buf.subarray(12, 12 + hlen).toString("utf8")) as Header;
  } catch {
    throw new Error("unreadable header");
  }
  if (!header.meta || !Array.isArray(header.parts) || header.parts.length !== ENCODINGS.length) {
    throw new Error("malformed header");
  }
  if (expectKey !== undefined && header.meta.key !== expectKey) throw new Error("key mismatch");
  let pos = 12 + hlen;
  const out: Partial<Record<Encoding, Buffer>> = {};
  for (const [i, enc] of ENCODINGS.entries()) {
    const [name, length, digest] = header.parts[i]!;
    if (name !== enc || !Number.isSafeInteger(length) || length < 0) throw new Error("malformed header");
    if (pos + length > buf.byteLength) throw new Error("truncated body");
    const part = buf.subarray(pos, pos + length);
    if (sha256(part) !== digest) throw new Error(`checksum mismatch (${enc})`);
    out[enc] = part;
    pos += length;
  }
  if (pos !== buf.byteLength) throw new Error("trailing bytes");
  return { meta: header.meta, identity: out.identity!, gzip: out.gzip!, br: out.br! };
}

export class DiskCache {
  readonly dir: string;
  readonly maxBytes: number;
  private readonly entriesDir: string;
  private readonly tmpDir: string;
  /** Insertion order = LRU order (oldest first). */
  private readonly index = new Map<string, IndexRecord>();
  private total = 0;
  private readonly opts: DiskCacheOptions;

  private constructor(opts: DiskCacheOptions) {
    this.opts = opts;
    this.dir = path.resolve(opts.dir);
    this.maxBytes = opts.maxBytes;
    this.entriesDir = path.join(this.dir, "entries");
    this.tmpDir = path.join(this.dir, "tmp");
  }

  /** Creates the directories, deletes leftovers of interrupted writes, and loads the index. */
  static async open(opts: DiskCacheOptions): Promise<DiskCache> {
    const c = new DiskCache(opts);
    await mkdir(c.entriesDir, { recursive: true });
    await rm(c.tmpDir, { recursive: true, force: true });
    await mkdir(c.tmpDir, { recursive: true });
    await c.loadIndex();
    await c.evict();
    return c;
  }

  private async loadIndex(): Promise<void> {
    const found: Array<{ key: string; size: number; mtime: number }> = [];
    for (const shard of await readdir(this.entriesDir).catch(() => [] as string[])) {
      const shardDir = path.join(this.entriesDir, shard);
      let names: string[];
      try {
        names = await readdir(shardDir);
      } catch {
        continue;
      }
      for (const name of names) {
        const full = path.join(shardDir, name);
        if (!name.endsWith(SUFFIX)) {
          // not ours (or an old temporary name): ignore, but never serve
          continue;
        }
        const key = name.slice(0, -SUFFIX.length);
        if (!/^[0-9a-f]{64}$/.test(key) || shard !== key.slice(0, 2)) continue;
        try {
          const st = await stat(full);
          if (st.isFile()) found.push({ key, size: st.size, mtime: st.mtimeMs });
        } catch {
          /* vanished */
        }
      }
    }
    found.sort((a, b) => a.mtime - b.mtime);
    for (const f of found) {
      this.index.set(f.key, { size: f.size });
      this.total += f.size;
    }
  }

  private fileOf(key: string): string {
    return path.join(this.entriesDir, key.slice(0, 2), key + SUFFIX);
  }

  has(key: string): boolean {
    return this.index.has(key);
  }

  get bytes(): number {
    return this.total;
  }

  get entries(): number {
    return this.index.size;
  }

  keys(): string[] {
    return [...this.index.keys()];
  }

  /** Reads and verifies an entry; a damaged one is deleted and reported as a miss. */
  async get(key: string): Promise<CacheEntry | undefined> {
    const rec = this.index.get(key);
    if (!rec) return undefined;
    const file = this.fileOf(key);
    let buf: Buffer;
    try {
      buf = await readFile(file);
    } catch {
      this.forget(key);
      return undefined;
    }
    let entry: CacheEntry;
    try {
      entry = decodeEntry(buf, key);
    } catch (e) {
      this.opts.onCorrupt?.(key, (e as Error).message);
      await this.delete(key);
      return undefined;
    }
    // LRU: move to the end, and remember the use across restarts
    this.index.delete(key);
    this.index.set(key, rec);
    const now = new Date();
    utimes(file, now, now).catch(() => undefined);
    return entry;
  }

  /** Writes atomically (temporary file, fsync, rename); then evicts down to the bound. False when too large to keep. */
  async put(entry: CacheEntry): Promise<boolean> {
    const key = entry.meta.key;
    const chunks = encodeEntry(entry);
    const size = chunks.reduce((n, c) => n + c.byteLength, 0);
    if (size > this.maxBytes) return false;
    const tmp = path.join(this.tmpDir, `${key}.${process.pid}.${randomBytes(6).toString("hex")}.tmp`);
    const final = this.fileOf(key);
    await mkdir(path.dirname(final), { recursive: true });
    const onWrite = this.opts.onWrite;
    await commitTemporary(
      tmp,
      final,
      async (fh) => {
        // header + JSON, then the compressed variants (no concatenated copy of a possibly large entry)
        const first = chunks.slice(0, 4);
        const rest = chunks.slice(4);
        const firstLen = first.reduce((n, c) => n + c.byteLength, 0);
        const a = await fh.writev(first, 0);
        if (a.bytesWritten !== firstLen) throw new Error(`short write to ${tmp}`);
        if (onWrite) await onWrite("partial", tmp);
        const b = await fh.writev(rest, firstLen);
        if (b.bytesWritten !== size - firstLen) throw new Error(`short write to ${tmp}`);
      },
      onWrite && (async () => onWrite("written", tmp)),
    );
    const old = this.index.get(key);
    if (old) {
      this.total -= old.size;
      this.index.delete(key);
    }
    this.index.set(key, { size });
    this.total += size;
    await this.evict();
    return true;
  }

  async delete(key: string): Promise<void> {
    this.forget(key);
    await unlink(this.fileOf(key)).catch(() => undefined);
  }

  private forget(key: string): void {
    const rec = this.index.get(key);
    if (!rec) return;
    this.total -= rec.size;
    this.index.delete(key);
  }

  /** Deletes least recently used entries until the total fits the bound. */
  private async evict(): Promise<void> {
    while (this.total > this.maxBytes && this.index.size > 0) {
      const oldest = this.index.keys().next().value as string;
      await this.delete(oldest);
    }
  }

  /** Whether a file can be created in the directory now (readiness). */
  async writable(): Promise<boolean> {
    const probe = path.join(this.tmpDir, `ready.${process.pid}.${randomBytes(4).toString("hex")}`);
    try {
      const fh = await open(probe, "wx");
      await fh.close();
      await unlink(probe);
      return true;
    } catch {
      return false;
    }
  }
}
