import type { ChunkRecord } from "../types.ts";
import { checkCount, chunkGrid, makeRecord, maxChunkGrid, type ChunkIndexContext } from "./common.ts";

/**
 * Implicit index (early allocation, no filters): chunks are stored back to
 * back from the index address. The position of a chunk uses the grid over the
 * maximum dimensions, while only chunks of the current extent are listed
 * (H5Dnone.c).
 */
export function listImplicit(ctx: ChunkIndexContext): ChunkRecord[] {
  const { layout } = ctx;
  if (layout.indexAddress === null) return [];
  const grid = chunkGrid(ctx.shape, layout.chunkShape);
  const maxGrid = maxChunkGrid(ctx);
  const total = grid.reduce((a, b) => a * b, 1);
  checkCount(ctx, total);
  const rank = grid.length;
  // Row-major "down" strides of the max grid.
  const down = new Array<number>(rank).fill(1);
  for (let i = rank - 2; i >= 0; i--) down[i] = down[i + 1]! * maxGrid[i + 1]!;
  const out: ChunkRecord[] = [];
  const idx = new Array<number>(rank).fill(0);
  for (let n = 0; n < total; n++) {
    let linear = 0;
    for (let i = 0; i < rank; i++) linear += idx[i]! * down[i]!;
    out.push(makeRecord(ctx, idx.slice(), layout.indexAddress + linear * layout.chunkBytes, layout.chunkBytes, 0));
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i]! < grid[i]!) break;
      idx[i] = 0;
    }
  }
  return out;
}
