/** The memory tier: an LRU bounded by the bytes of all variants of its entries. */
import { LRUCache } from "lru-cache";
import { entryBytes, type CacheEntry } from "./entry.ts";

export class MemoryCache {
  private readonly lru: LRUCache<string, CacheEntry> | undefined;

  constructor(readonly maxBytes: number) {
    this.lru =
      maxBytes > 0
        ? new LRUCache<string, CacheEntry>({ maxSize: maxBytes, sizeCalculation: (e) => Math.max(1, entryBytes(e)) })
        : undefined;
  }

  get(key: string): CacheEntry | undefined {
    return this.lru?.get(key);
  }

  has(key: string): boolean {
    return this.lru?.has(key) ?? false;
  }

  /** Entries larger than the whole bound are not kept. */
  set(entry: CacheEntry): void {
    this.lru?.set(entry.meta.key, entry);
  }

  delete(key: string): void {
    this.lru?.delete(key);
  }

  clear(): void {
    this.lru?.clear();
  }

  get bytes(): number {
    return this.lru?.calculatedSize ?? 0;
  }

  get entries(): number {
    return this.lru?.size ?? 0;
  }
}
