/**
 * Decoded chunks, shared by slice reads: a warm read of a compressed chunk
 * then costs a copy instead of an inflate (HDF5 keeps decoded chunks the same
 * way). Keyed by the document (weakly, by its refs object: a new index
 * version never sees another's chunks) and the chunk key. Bounded in bytes;
 * a chunk bigger than an eighth of the bound is not kept.
 */
import { LRUCache } from "lru-cache";
import type * as zarr from "zarrita";

/** Bytes charged per element of an object chunk besides a string's characters (pointer and header). */
const OBJECT_ELEMENT_BYTES = 16;
/** Bytes charged for an element that is neither a string nor a number (a compound row, a reference). */
const ROW_BYTES = 64;

export interface DecodedChunkCacheStats {
  hits: number;
  misses: number;
}

type Chunk = zarr.Chunk<zarr.DataType>;

/** Estimated memory of a decoded chunk: a typed array's bytes, or per element of an object array (strings by length). */
function chunkBytes(c: Chunk): number {
  const d = c.data as unknown as { byteLength?: number; length: number };
  if (typeof d.byteLength === "number") return Math.max(1, d.byteLength);
  if (!Array.isArray(d)) return Math.max(1, d.length * OBJECT_ELEMENT_BYTES);
  let n = 0;
  for (const x of d as unknown[]) n += OBJECT_ELEMENT_BYTES + (typeof x === "string" ? 2 * x.length : typeof x === "object" && x !== null ? ROW_BYTES : 0);
  return Math.max(1, n);
}

export class DecodedChunkCache {
  readonly stats: DecodedChunkCacheStats = { hits: 0, misses: 0 };
  private readonly lru: LRUCache<string, Chunk>;
  private readonly docIds = new WeakMap<object, number>();
  private nextDocId = 1;

  constructor(opts: { maxBytes: number }) {
    const maxSize = Math.max(1, Math.floor(opts.maxBytes));
    this.lru = new LRUCache<string, Chunk>({ maxSize, maxEntrySize: Math.max(1, Math.floor(maxSize / 8)), sizeCalculation: chunkBytes });
  }

  /** Bytes held. */
  get size(): number {
    return this.lru.calculatedSize;
  }

  /** The cache key of `chunkKey` in the document whose refs object is `refs`. */
  keyOf(refs: object, chunkKey: string): string {
    let id = this.docIds.get(refs);
    if (id === undefined) this.docIds.set(refs, (id = this.nextDocId++));
    return `${id}:${chunkKey}`;
  }

  get(key: string): Chunk | undefined {
    const hit = this.lru.get(key);
    if (hit) this.stats.hits++;
    else this.stats.misses++;
    return hit;
  }

  set(key: string, chunk: Chunk): void {
    this.lru.set(key, chunk);
  }

  clear(): void {
    this.lru.clear();
  }
}

let processWide: DecodedChunkCache | null = null;

/** The cache slice reads use when given none (64 MiB). */
export function defaultDecodedChunkCache(): DecodedChunkCache {
  return (processWide ??= new DecodedChunkCache({ maxBytes: 64 * 1024 * 1024 }));
}
