import h5wasm from "h5wasm";
import { dirname, isAbsolute, join, resolve } from "node:path";
import type { ExternalFileOpener } from "../hdf5/rawData.ts";
import { FileByteSource, type ByteSource } from "../hdf5/byteSource.ts";
import { loadH5wasm, localFileReader, mountLazyFile, unmountLazyFile, type SyncReader } from "../hdf5/h5wasmRuntime.ts";
import { Hdf5LayoutReader } from "../hdf5/layout/index.ts";
import { withClearedStatusFlags } from "../hdf5/superblockPatch.ts";
import { walkFile, type H5Model } from "../hdf5/walk.ts";
import { buildLindiDocument, DEFAULT_OPTIONS, type GenerateOptions, type LindiDocument } from "./generate.ts";

/** The file could not be opened or walked as HDF5 at all (corrupt, truncated, not HDF5). */
export class NotHdf5Error extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NotHdf5Error";
  }
}

function firstLine(e: unknown): string {
  const text = e instanceof Error ? e.message : String(e);
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const deepest = [...lines].reverse().find((l) => /^#\d+:/.test(l));
  const detail = deepest ? deepest.replace(/^#\d+: \S+ line \d+ in /, "") : lines[0];
  return detail ?? "unknown error";
}

/**
 * Phase A over any synchronously readable bytes: mount them lazily in
 * h5wasm, open, walk, close.
 */
export async function walkHdf5(size: number, reader: SyncReader): Promise<H5Model> {
  const m = await loadH5wasm();
  const mounted = mountLazyFile(m, size, withClearedStatusFlags(size, reader));
  let file: InstanceType<typeof h5wasm.File> | null = null;
  try {
    try {
      file = new h5wasm.File(mounted, "r");
    } catch (e) {
      throw new NotHdf5Error(`not a readable HDF5 file: ${firstLine(e)}`);
    }
    try {
      return walkFile(m, file.file_id);
    } catch (e) {
      throw new NotHdf5Error(`cannot read the file's structure: ${firstLine(e)}`);
    }
  } finally {
    try {
      file?.close();
    } catch {
      // closing a file whose open failed half-way
    }
    unmountLazyFile(m, mounted);
  }
}

/** Phase A + phase B + emit, for bytes readable both synchronously (h5wasm) and asynchronously (layout reader). */
export async function indexHdf5(
  size: number,
  syncReader: SyncReader,
  source: ByteSource,
  opts: Partial<GenerateOptions> & { url: string },
): Promise<LindiDocument> {
  const model = await walkHdf5(size, syncReader);
  let layoutReader: Hdf5LayoutReader;
  try {
    layoutReader = await Hdf5LayoutReader.open(source);
  } catch (e) {
    throw new NotHdf5Error(`cannot read the HDF5 superblock: ${e instanceof Error ? e.message : String(e)}`);
  }
  return buildLindiDocument(model, layoutReader, { ...DEFAULT_OPTIONS, ...opts });
}

/**
 * Opens external raw data files next to a local HDF5 file, as HDF5 does for
 * relative names. Absolute names and names leaving the folder are refused.
 */
export function siblingFileOpener(hdf5Path: string): ExternalFileOpener {
  const dir = dirname(resolve(hdf5Path));
  return async (name) => {
    if (isAbsolute(name) || name.split(/[\\/]/).includes("..")) {
      throw new Error(`external file name ${JSON.stringify(name)} is not a plain relative name`);
    }
    return FileByteSource.open(join(dir, name));
  };
}

/** Indexes a local HDF5 file; `url` is what the refs point to. */
export async function indexLocalFile(path: string, opts: Partial<GenerateOptions> & { url: string }): Promise<LindiDocument> {
  const local = localFileReader(path);
  const source = await FileByteSource.open(path);
  try {
    return await indexHdf5(local.size, local.reader, source, { openExternalFile: siblingFileOpener(path), ...opts });
  } finally {
    local.close();
    await source.close();
  }
}
