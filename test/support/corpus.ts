/**
 * Access to the shared test corpus (../shared/corpus/files beside the repo)
 * and small h5wasm helpers for tests that compare against the HDF5 library.
 *
 * A missing corpus makes tests fail (never skip silently).
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import h5wasm from "h5wasm";

const here = path.dirname(fileURLToPath(import.meta.url));
/** Repository root (test/support -> ../..). */
export const repoRoot = path.resolve(here, "../..");
/** Absolute path of the corpus files directory. */
export const corpusDir = path.resolve(repoRoot, "../shared/corpus/files");

export const CORPUS_MISSING = "../shared/corpus is missing: the corpus must sit beside the repo";

/** The corpus directory; throws (failing the test) when it is absent. */
export function requireCorpus(): string {
  if (!existsSync(path.join(corpusDir, "features.json"))) throw new Error(CORPUS_MISSING);
  return corpusDir;
}

/** Absolute path of a corpus file given its path relative to the corpus root. */
export function corpusFile(rel: string): string {
  return path.join(requireCorpus(), rel);
}

/** One entry of features.json (fields used by tests; more exist). */
export interface CorpusEntry {
  path: string;
  size: number;
  open_ok: boolean;
  features: string[];
  chunk_indexes?: string[];
  layouts?: string[];
  filters?: string[];
  superblock_version?: number;
  sizeof_offsets?: number;
  userblock?: number;
  counts?: { datasets?: number; chunks?: number; [k: string]: number | undefined };
  unreadable_datasets?: unknown[];
  [k: string]: unknown;
}

let features: CorpusEntry[] | null = null;

/** features.json: one entry per corpus file. */
export function loadFeatures(): CorpusEntry[] {
  features ??= JSON.parse(readFileSync(path.join(requireCorpus(), "features.json"), "utf8")) as CorpusEntry[];
  return features;
}

/** synthetic/expected.json: dtype, shape, fill value, ... of every synthetic dataset. */
export function loadSyntheticExpected(): Record<string, { datasets?: Record<string, Record<string, unknown>> }> {
  return JSON.parse(readFileSync(path.join(requireCorpus(), "synthetic/expected.json"), "utf8")) as Record<
    string,
    { datasets?: Record<string, Record<string, unknown>> }
  >;
}

export type H5Module = Awaited<typeof h5wasm.ready>;
export type H5File = InstanceType<typeof h5wasm.File>;

let modulePromise: Promise<H5Module> | null = null;

export function h5module(): Promise<H5Module> {
  modulePromise ??= h5wasm.ready.then((M) => {
    M.activate_throwing_error_handler();
    return M;
  });
  return modulePromise;
}

let counter = 0;

/**
 * Opens a local file with h5wasm (copied into its in-memory FS). The callback
 * gets the file; it is closed and removed afterwards.
 */
export async function withH5File<T>(absPath: string, fn: (f: H5File, M: H5Module) => T | Promise<T>): Promise<T> {
  const M = await h5module();
  const name = `/corpus_${process.pid}_${counter++}.h5`;
  M.FS!.writeFile(name, readFileSync(absPath));
  let f: H5File | null = null;
  try {
    f = new h5wasm.File(name, "r");
    return await fn(f, M);
  } finally {
    try {
      f?.close();
    } catch {
      /* already broken */
    }
    M.FS!.unlink(name);
  }
}

/**
 * Paths of every dataset reachable through hard links (each object once),
 * walking groups with h5wasm. Soft/external links and unreadable entries are
 * skipped.
 */
export function listDatasetPaths(f: H5File, M: H5Module): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (group: string, depth: number): void => {
    if (depth > 64) return;
    let names: string[];
    try {
      names = M.get_names(f.file_id, group, false);
    } catch {
      return;
    }
    for (const name of names) {
      const full = group === "/" ? `/${name}` : `${group}/${name}`;
      let type: number;
      try {
        // Skip symbolic links: the targets are reached through their hard links.
        const link = M.get_symbolic_link(f.file_id, full);
        if (link) continue;
        type = M.get_type(f.file_id, full);
      } catch {
        continue;
      }
      if (type !== M.H5G_GROUP && type !== M.H5G_DATASET) continue;
      let addr: number;
      try {
        addr = objectAddress(f, M, full);
      } catch {
        continue;
      }
      const key = String(addr);
      if (seen.has(key)) continue;
      seen.add(key);
      if (type === M.H5G_DATASET) out.push(full);
      else walk(full, depth + 1);
    }
  };
  walk("/", 0);
  return out;
}

/** Object header address (relative to the base address) as HDF5 reports it. */
export function objectAddress(f: H5File, M: H5Module, p: string): number {
  const ref = Uint8Array.from(M.create_object_reference(f.file_id, p));
  return Number(new DataView(ref.buffer).getBigUint64(0, true));
}

/**
 * The dataset's full contents as h5wasm returns them (memory type = file type
 * with big-endian switched to little-endian), or null when unreadable.
 */
export function readRawDataset(f: H5File, M: H5Module, p: string, nbytes: number): Uint8Array | null {
  const ptr = M._malloc(Math.max(1, nbytes));
  try {
    M.get_dataset_data(f.file_id, p, null, null, null, BigInt(ptr));
    return M.HEAPU8.slice(ptr, ptr + nbytes);
  } catch {
    return null;
  } finally {
    M._free(ptr);
  }
}
