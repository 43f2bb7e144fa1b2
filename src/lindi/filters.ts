import type { PyJson } from "./pythonJson.ts";

/** One stage of an HDF5 filter pipeline, as stored in the file. */
export interface HdfFilter {
  id: number;
  name: string | null;
  cdValues: number[];
}

export const FILTER_NAMES: Record<number, string> = {
  1: "deflate",
  2: "shuffle",
  3: "fletcher32",
  4: "szip",
  5: "nbit",
  6: "scaleoffset",
  307: "bzip2",
  32000: "lzf",
  32001: "blosc",
  32004: "lz4",
  32008: "bitshuffle",
  32013: "zfp",
  32015: "zstd",
  32017: "sz",
};

const BLOSC_CNAMES = ["blosclz", "lz4", "lz4hc", "snappy", "zlib", "zstd"];

export function filterName(f: HdfFilter): string {
  return FILTER_NAMES[f.id] ?? f.name ?? `filter ${f.id}`;
}

/** Thrown for a filter LINDI (the reference) has no codec for. */
export class UnsupportedFilterError extends Error {
  constructor(readonly filter: HdfFilter) {
    super(`uses the ${filterName(filter)} filter (id ${filter.id}), which LINDI cannot express`);
  }
}

/**
 * The Zarr `filters` list for an HDF5 pipeline (spec §7): shuffle first
 * (wherever HDF5 had it), then every other filter in pipeline order. null
 * when the pipeline is empty (never `[]`).
 */
export function hdfFiltersToCodecs(filters: HdfFilter[], itemsize: number): PyJson[] | null {
  for (const f of filters) {
    if ([4, 6, 32000].includes(f.id)) throw new UnsupportedFilterError(f);
  }
  const out: PyJson[] = [];
  if (filters.some((f) => f.id === 2)) out.push({ elementsize: itemsize, id: "shuffle" });
  for (const f of filters) {
    switch (f.id) {
      case 2:
        break;
      case 1:
        out.push({ id: "zlib", level: f.cdValues[0] ?? 6 });
        break;
      case 3:
        out.push({ id: "fletcher32" });
        break;
      case 32001: {
        const cd = f.cdValues;
        const cname = BLOSC_CNAMES[cd[6] ?? 0];
        if (cname === undefined) throw new UnsupportedFilterError(f);
        out.push({ blocksize: cd[3] ?? 0, clevel: cd[4] ?? 5, cname, id: "blosc", shuffle: cd[5] ?? 1 });
        break;
      }
      case 32015:
        out.push({ id: "zstd", level: f.cdValues[0] ?? 0 });
        break;
      default:
        throw new UnsupportedFilterError(f);
    }
  }
  return out.length > 0 ? out : null;
}
