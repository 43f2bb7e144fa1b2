import { Hdf5FormatError, Hdf5TruncatedError } from "../errors.ts";
import type { FileIo } from "../reader.ts";
import type { ChunkRecord, ChunkedLayout } from "../types.ts";

/** Everything a chunk index walker needs about its dataset. */
export interface ChunkIndexContext {
  io: FileIo;
  layout: ChunkedLayout;
  /** Current dataset dimensions. */
  shape: number[];
  /** Maximum dimensions (null = unlimited). */
  maxShape: (number | null)[];
  /** Human-readable dataset identification for error messages. */
  what: string;
}

/** Hard cap on chunks per dataset, to bound memory on corrupt input. */
export const MAX_CHUNKS = 50_000_000;

export function ceilDiv(a: number, b: number): number {
  return Math.floor((a + b - 1) / b);
}

/** Chunks per dimension covering `dims`. */
export function chunkGrid(dims: readonly number[], chunkShape: readonly number[]): number[] {
  return dims.map((d, i) => ceilDiv(d, chunkShape[i]!));
}

/**
 * Chunks per dimension covering the maximum dimensions. Fixed arrays and the
 * implicit index number chunks over this grid (H5Dchunk.c max_down_chunks).
 */
export function maxChunkGrid(ctx: ChunkIndexContext): number[] {
  return ctx.maxShape.map((m, i) => ceilDiv(m ?? ctx.shape[i]!, ctx.layout.chunkShape[i]!));
}

/** Row-major multi-index of `linear` in a grid. */
export function unravel(linear: number, grid: readonly number[]): number[] {
  const out = new Array<number>(grid.length);
  let rest = linear;
  for (let i = grid.length - 1; i >= 0; i--) {
    const g = grid[i]!;
    out[i] = g > 0 ? rest % g : 0;
    rest = g > 0 ? Math.floor(rest / g) : 0;
  }
  return out;
}

/** Validates a chunk against the file and builds its record. */
export function makeRecord(
  ctx: ChunkIndexContext,
  index: number[],
  offset: number,
  size: number,
  filterMask: number,
): ChunkRecord {
  if (offset + size > ctx.io.size) {
    throw new Hdf5TruncatedError(
      `truncated file: ${ctx.what}: chunk ${JSON.stringify(index)} at ${offset} (+${size} bytes) extends past the end of the file (${ctx.io.size} bytes)`,
    );
  }
  return { index, offset, size, filterMask };
}

export function compareIndex(a: ChunkRecord, b: ChunkRecord): number {
  for (let i = 0; i < a.index.length; i++) {
    const d = a.index[i]! - b.index[i]!;
    if (d !== 0) return d;
  }
  return 0;
}

export function checkCount(ctx: ChunkIndexContext, n: number): void {
  if (n > MAX_CHUNKS) throw new Hdf5FormatError(`${ctx.what}: more than ${MAX_CHUNKS} chunks`);
}

/** Groups sorted, possibly adjacent ranges into fewer reads (at most maxBytes each). */
export function coalesce<T extends { start: number; end: number }>(ranges: T[], maxBytes: number): T[][] {
  const groups: T[][] = [];
  let cur: T[] = [];
  for (const r of ranges) {
    const first = cur[0];
    if (first && r.start === cur[cur.length - 1]!.end && r.end - first.start <= maxBytes) cur.push(r);
    else {
      if (cur.length) groups.push(cur);
      cur = [r];
    }
  }
  if (cur.length) groups.push(cur);
  return groups;
}
