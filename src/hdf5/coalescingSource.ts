/**
 * A ByteSource that merges nearby reads into one. Reads issued during the
 * same turn of the event loop are collected, sorted, and those less than
 * `gap` bytes apart (up to `maxBytes` per merged read) become one read of
 * the source; each caller gets its slice. Meant for a remote source, where a
 * request costs a round trip and per-request work: the layout reader reads
 * the nodes of a chunk index level all at once, and writers such as h5py put
 * sibling B-tree nodes next to each other.
 */
import { groupNearbyRanges } from "./rangeGroups.ts";
import type { ByteSource } from "./byteSource.ts";

export interface CoalescingOptions {
  /** Reads closer than this are merged (the bytes between are fetched too). Default 4 KiB. */
  gap?: number;
  /** Largest merged read. Default 1 MiB. */
  maxBytes?: number;
}

export interface CoalescingStats {
  /** Reads asked for, and reads made of the source. */
  reads: number;
  sourceReads: number;
}

interface Pending {
  start: number;
  end: number;
  resolve: (b: Uint8Array) => void;
  reject: (e: unknown) => void;
}

export class CoalescingByteSource implements ByteSource {
  readonly stats: CoalescingStats = { reads: 0, sourceReads: 0 };
  private readonly gap: number;
  private readonly maxBytes: number;
  private pending: Pending[] = [];
  private scheduled = false;

  constructor(
    private readonly source: ByteSource,
    opts: CoalescingOptions = {},
  ) {
    this.gap = Math.max(0, opts.gap ?? 4096);
    this.maxBytes = Math.max(1, opts.maxBytes ?? 1024 * 1024);
  }

  get size(): number {
    return this.source.size;
  }

  read(offset: number, length: number): Promise<Uint8Array> {
    this.stats.reads++;
    return new Promise<Uint8Array>((resolve, reject) => {
      this.pending.push({ start: offset, end: offset + Math.max(0, length), resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        // after the current turn: every read issued by code running now joins this batch
        setImmediate(() => this.flush());
      }
    });
  }

  close(): Promise<void> {
    return this.source.close?.() ?? Promise.resolve();
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.pending;
    this.pending = [];
    for (const g of groupNearbyRanges(batch, this.gap, this.maxBytes)) this.readGroup(g.members, g.start, g.end);
  }

  private readGroup(group: Pending[], start: number, end: number): void {
    this.stats.sourceReads++;
    this.source.read(start, end - start).then(
      (bytes) => {
        if (group.length === 1) {
          group[0]!.resolve(bytes);
          return;
        }
        // each caller owns its bytes (readers may decode in place); a short read (end of file)
        // leaves each the bytes that exist, as the source would
        for (const p of group) p.resolve(bytes.slice(Math.min(p.start - start, bytes.byteLength), Math.min(p.end - start, bytes.byteLength)));
      },
      (e: unknown) => {
        for (const p of group) p.reject(e);
      },
    );
  }
}
