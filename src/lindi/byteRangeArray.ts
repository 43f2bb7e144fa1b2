import { elementCount, type NumpyDtype } from "../hdf5/dtype.ts";
import type { ChunkRecord, DatasetLayoutInfo } from "../hdf5/layout/index.ts";
import { LindiConversionError } from "./errors.ts";
import { zarrFillValue } from "./fillValue.ts";
import { hdfFiltersToCodecs, UnsupportedFilterError } from "./filters.ts";
import type { PyJson } from "./pythonJson.ts";

export interface ByteRangeOptions {
  /** Chunked datasets with more grid cells than this become `_EXTERNAL_ARRAY_LINK`; null disables. */
  chunksThreshold: number | null;
  /** Unfiltered single-chunk numeric datasets larger than this are split into pieces; null disables. */
  splitBytes: number | null;
}

/** What a byte-range dataset contributes: its `.zarray` and how to find its chunk refs. */
export interface ByteRangePlan {
  zarray: Record<string, PyJson>;
  /**
   * - `chunks`: one ref per allocated HDF5 chunk (needs the chunk index);
   * - `contiguous`: one ref at [offset, size);
   * - `split`: pieces of `pieceBytes` from [offset, offset+size);
   * - `none`: no chunk keys (zero-size, or an external array link).
   */
  refs:
    | { kind: "chunks" }
    | { kind: "contiguous"; offset: number; size: number }
    | { kind: "split"; offset: number; size: number; pieceBytes: number; pieces: number }
    | { kind: "none" };
}

/** Number of cells of a chunk grid (a chunk dim of 0 counts as 0). */
export function chunkGridCells(shape: number[], chunks: number[]): number {
  let n = 1;
  shape.forEach((d, i) => {
    const c = chunks[i] ?? 0;
    n *= c === 0 ? 0 : Math.ceil(d / c);
  });
  return n;
}

/** Whether a chunked dataset becomes an external array link (spec §5.6). */
export function isExternalArrayLink(shape: number[] | null, chunks: number[] | null, threshold: number | null): boolean {
  if (threshold === null || !chunks || !shape) return false;
  return chunkGridCells(shape, chunks) > threshold;
}

/**
 * The `.zarray` and ref plan of a dataset LINDI leaves in the HDF5 file
 * (spec §5.5–5.8), from its HDF5 layout.
 */
export function planByteRangeArray(
  path: string,
  shape: number[],
  dtype: NumpyDtype,
  layout: DatasetLayoutInfo,
  externalLink: boolean,
  opts: ByteRangeOptions,
): ByteRangePlan {
  let filters: PyJson[] | null;
  try {
    filters = hdfFiltersToCodecs(layout.filters, dtype.itemsize);
  } catch (e) {
    if (e instanceof UnsupportedFilterError) throw new LindiConversionError(path, e.message);
    throw e;
  }
  const fillValue = zarrFillValue(dtype, layout.fillValue.bytes);
  const storage = layout.layout;
  const hdfChunks = storage.kind === "chunked" ? storage.chunkShape : null;
  const empty = elementCount(shape) === 0;
  const zarray = (chunks: number[]): Record<string, PyJson> => ({
    chunks,
    compressor: null,
    dtype: dtype.str,
    fill_value: fillValue,
    filters,
    order: "C",
    shape,
    zarr_format: 2,
  });

  const nbytes = elementCount(shape) * dtype.itemsize;
  const singleChunk = hdfChunks === null || hdfChunks.every((c, i) => c === shape[i]);
  const split = !externalLink && !empty && opts.splitBytes !== null && filters === null && singleChunk &&
    (dtype.kind === "i" || dtype.kind === "u" || dtype.kind === "f") && nbytes > opts.splitBytes;

  if (split) {
    const rowBytes = elementCount(shape.slice(1)) * dtype.itemsize;
    const rows = Math.max(1, Math.floor(opts.splitBytes! / rowBytes));
    const chunks = [rows, ...shape.slice(1)];
    const pieceBytes = elementCount(chunks) * dtype.itemsize;
    const pieces = Math.ceil(elementCount(shape) / elementCount(chunks));
    const base = storage.kind === "contiguous" ? storage.address : null;
    if (storage.kind === "contiguous") {
      if (base === null) throw new LindiConversionError(path, "contiguous storage was never allocated (no file offset)");
      return { zarray: zarray(chunks), refs: { kind: "split", offset: base, size: storage.size, pieceBytes, pieces } };
    }
    // a single HDF5 chunk: split its byte range (found through the chunk index)
    return { zarray: zarray(chunks), refs: { kind: "split", offset: -1, size: nbytes, pieceBytes, pieces } };
  }

  if (storage.kind === "chunked") {
    return { zarray: zarray(storage.chunkShape), refs: empty || externalLink ? { kind: "none" } : { kind: "chunks" } };
  }
  const chunks = empty ? shape.map(() => 1) : shape;
  if (empty) return { zarray: zarray(chunks), refs: { kind: "none" } };
  if (storage.kind === "compact") {
    throw new LindiConversionError(path, "compact storage of 1000 or more elements has no file offset");
  }
  if (storage.kind === "virtual") throw new LindiConversionError(path, "virtual datasets have no file offset");
  if (layout.externalFiles) throw new LindiConversionError(path, "data stored in external raw files has no offset in this file");
  if (storage.address === null) throw new LindiConversionError(path, "contiguous storage was never allocated (no file offset)");
  return { zarray: zarray(chunks), refs: { kind: "contiguous", offset: storage.address, size: storage.size } };
}

/** Adds the `[url, offset, size]` refs of a plan to `refs`. */
export function addByteRangeRefs(
  refs: Record<string, PyJson>,
  key: string,
  ndim: number,
  plan: ByteRangePlan,
  url: string,
  chunkRecords: ChunkRecord[] | null,
  /** Every ref added is also pushed here (templating then visits only these). */
  added: PyJson[][],
): void {
  const zeros = new Array(Math.max(ndim - 1, 0)).fill("0");
  const r = plan.refs;
  const add = (chunkKey: string, offset: number, size: number) => {
    const ref = [url, offset, size];
    refs[chunkKey] = ref;
    added.push(ref);
  };
  switch (r.kind) {
    case "none":
      return;
    case "contiguous":
      add(`${key}/${new Array(ndim).fill("0").join(".")}`, r.offset, r.size);
      return;
    case "split": {
      for (let i = 0; i < r.pieces; i++) {
        const start = r.offset + i * r.pieceBytes;
        const size = Math.min(r.pieceBytes, r.offset + r.size - start);
        add(`${key}/${[String(i), ...zeros].join(".")}`, start, size);
      }
      return;
    }
    case "chunks": {
      const prefix = `${key}/`;
      for (const c of chunkRecords ?? []) add(prefix + (c.index.length === 1 ? String(c.index[0]) : c.index.join(".")), c.offset, c.size);
      return;
    }
  }
}
