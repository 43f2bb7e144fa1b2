/**
 * The `.lindi.d` directory container (spec 11): `lindi.json` (same JSON
 * formatting as `.lindi.json`, not padded) plus chunk files `blobs/<key>`
 * referenced as `["./blobs/<key>", 0, len]`. No entry/index files, no trash:
 * files are deleted directly. Paths containing `..` are rejected.
 */
import { mkdir, open, rm, stat, writeFile, rename, readdir } from "node:fs/promises";
import path from "node:path";
import { LindiTarError, LINDI_JSON_NAME, memberNameOfRef } from "./lindiTar.ts";

function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** `<dir>/<rest of ./ref>` after checking the ref stays inside `dir`. */
export function dirRefPath(dir: string, refUrl: string): string {
  const rel = memberNameOfRef(refUrl); // rejects "..", ".", empty components
  const root = path.resolve(dir);
  const full = path.resolve(root, ...rel.split("/"));
  if (!full.startsWith(root + path.sep)) throw new LindiTarError(`ref ${refUrl} points outside ${dir}`);
  return full;
}

/** Reads `[off, off+len)` of a `./` ref inside a `.lindi.d`, bounds-checked against the file size. */
export function readDirRef(dir: string, refUrl: string, off: number, len: number): Promise<Uint8Array> {
  return readFileRange(dirRefPath(dir, refUrl), off, len, refUrl);
}

/** `[off, off+len)` of a local file, bounds-checked against its size. */
export async function readFileRange(file: string, off: number, len: number, what = file): Promise<Uint8Array> {
  const fh = await open(file, "r");
  try {
    const { size } = await fh.stat();
    if (!Number.isSafeInteger(off) || !Number.isSafeInteger(len) || off < 0 || len < 0 || off + len > size) {
      throw new LindiTarError(`ref [${off}, ${off + len}) extends past the end of ${what} (${size} bytes)`);
    }
    const buf = new Uint8Array(len);
    let done = 0;
    while (done < len) {
      const { bytesRead } = await fh.read(buf, done, len - done, off + done);
      if (bytesRead === 0) throw new LindiTarError(`${what} shrank while reading`);
      done += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

export interface CreateLindiDirOptions {
  /**
   * Fail if the directory exists. Default false: an existing `.lindi.d` (a
   * directory holding `lindi.json`) is emptied of its `blobs/` and reused; any
   * other existing directory is only written into.
   */
  exclusive?: boolean;
}

/** Writes a `.lindi.d`: blobs immediately, `lindi.json` on flush (written to a temp file, then renamed). */
export class LindiDirWriter {
  private pending: string | undefined;
  private closed = false;

  private constructor(readonly dir: string) {}

  static async create(dir: string, lindiJson: string, opts: CreateLindiDirOptions = {}): Promise<LindiDirWriter> {
    if (opts.exclusive) {
      await mkdir(dir); // throws EEXIST
    } else {
      await mkdir(dir, { recursive: true });
      const had = await stat(path.join(dir, LINDI_JSON_NAME)).then((st) => st.isFile(), () => false);
      if (had) await rm(path.join(dir, "blobs"), { recursive: true, force: true });
    }
    const w = new LindiDirWriter(dir);
    w.pending = lindiJson;
    await w.flush();
    return w;
  }

  static async open(dir: string): Promise<LindiDirWriter> {
    const st = await stat(path.join(dir, LINDI_JSON_NAME));
    if (!st.isFile()) throw new LindiTarError(`${dir} has no ${LINDI_JSON_NAME}`);
    return new LindiDirWriter(dir);
  }

  /**
   * Writes `blobs/<key>` (or `blobs/<key>.v2`, `.v3`, … when that file exists,
   * as lindi does); returns the ref URL `./blobs/…`.
   */
  async addBlob(key: string, data: Uint8Array): Promise<string> {
    this.checkOpen();
    const base = `./blobs/${key}`;
    let refUrl = base;
    for (let v = 2; await exists(dirRefPath(this.dir, refUrl)); v++) refUrl = `${base}.v${v}`;
    const file = dirRefPath(this.dir, refUrl);
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, data);
    return refUrl;
  }

  async deleteBlob(refUrl: string): Promise<void> {
    this.checkOpen();
    await rm(dirRefPath(this.dir, refUrl), { force: true });
  }

  async listBlobs(): Promise<string[]> {
    const out: string[] = [];
    const walk = async (rel: string): Promise<void> => {
      let entries;
      try {
        entries = await readdir(path.join(this.dir, rel), { withFileTypes: true });
      } catch {
        return;
      }
      for (const e of entries) {
        const r = `${rel}/${e.name}`;
        if (e.isDirectory()) await walk(r);
        else out.push(`./${r}`);
      }
    };
    await walk("blobs");
    return out.sort();
  }

  setLindiJson(text: string): void {
    this.checkOpen();
    this.pending = text;
  }

  async flush(): Promise<void> {
    if (this.pending === undefined) return;
    const target = path.join(this.dir, LINDI_JSON_NAME);
    const tmp = `${target}.tmp-${process.pid}`;
    await writeFile(tmp, this.pending, "utf8");
    await rename(tmp, target);
    this.pending = undefined;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await this.flush();
    this.closed = true;
  }

  private checkOpen(): void {
    if (this.closed) throw new LindiTarError(".lindi.d writer is closed");
  }
}
