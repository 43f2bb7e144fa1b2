import type { ChunkRecord } from "../types.ts";
import { makeRecord, type ChunkIndexContext } from "./common.ts";

/** Single chunk index: the layout address is the one chunk, at grid index [0, ..., 0]. */
export function listSingleChunk(ctx: ChunkIndexContext): ChunkRecord[] {
  const { layout } = ctx;
  if (layout.indexAddress === null) return [];
  const filtered = (layout.flags & 0x02) !== 0;
  const size = filtered ? layout.singleChunkFilteredSize ?? 0 : layout.chunkBytes;
  const mask = filtered ? layout.singleChunkFilterMask ?? 0 : 0;
  return [makeRecord(ctx, layout.chunkShape.map(() => 0), layout.indexAddress, size, mask)];
}
