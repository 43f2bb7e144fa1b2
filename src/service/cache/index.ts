/**
 * Memory LRU in front of the disk directory. Reads promote disk hits into
 * memory; writes go to both (the disk write is tracked so shutdown can wait
 * for it).
 */
import { DiskCache, type DiskCacheOptions } from "./disk.ts";
import { MemoryCache } from "./memory.ts";
import type { CacheEntry } from "./entry.ts";

export type CacheTier = "memory" | "disk";

export interface TieredCacheOptions {
  dir: string;
  diskMaxBytes: number;
  memoryMaxBytes: number;
  onWrite?: DiskCacheOptions["onWrite"];
  onCorrupt?: DiskCacheOptions["onCorrupt"];
}

export class TieredCache {
  private readonly pending = new Set<Promise<unknown>>();
  /** Entries being written to disk (found by `get` even when memory could not keep them). */
  private readonly writing = new Map<string, CacheEntry>();

  private constructor(
    readonly memory: MemoryCache,
    readonly disk: DiskCache,
  ) {}

  static async open(opts: TieredCacheOptions): Promise<TieredCache> {
    const disk = await DiskCache.open({
      dir: opts.dir,
      maxBytes: opts.diskMaxBytes,
      onWrite: opts.onWrite,
      onCorrupt: opts.onCorrupt,
    });
    return new TieredCache(new MemoryCache(opts.memoryMaxBytes), disk);
  }

  async get(key: string): Promise<{ entry: CacheEntry; tier: CacheTier } | undefined> {
    const m = this.memory.get(key);
    if (m) return { entry: m, tier: "memory" };
    const w = this.writing.get(key);
    if (w) return { entry: w, tier: "memory" };
    const d = await this.disk.get(key);
    if (d) {
      this.memory.set(d);
      return { entry: d, tier: "disk" };
    }
    return undefined;
  }

  /** Memory (or a pending disk write) only, synchronously: closes the gap between a lookup and starting a build. */
  peek(key: string): CacheEntry | undefined {
    return this.memory.get(key) ?? this.writing.get(key);
  }

  /** Whether the key is present in some tier (the disk entry is not verified here). */
  has(key: string): boolean {
    return this.memory.has(key) || this.writing.has(key) || this.disk.has(key);
  }

  /**
   * Stores in memory now and on disk in the background; the returned promise
   * settles when the disk write has (false: too large for the disk bound).
   */
  put(entry: CacheEntry): Promise<boolean> {
    const key = entry.meta.key;
    this.memory.set(entry);
    this.writing.set(key, entry);
    const p = this.disk.put(entry);
    this.pending.add(p);
    const done = () => {
      this.pending.delete(p);
      if (this.writing.get(key) === entry) this.writing.delete(key);
    };
    p.then(done, done);
    return p;
  }

  /** Waits for background disk writes (shutdown). */
  async flush(): Promise<void> {
    while (this.pending.size > 0) await Promise.allSettled([...this.pending]);
  }
}

export type { CacheEntry, EntryMeta, Encoding } from "./entry.ts";
export { makeEntry, etagFor, entryBytes } from "./entry.ts";
