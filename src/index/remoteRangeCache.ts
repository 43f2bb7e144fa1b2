/**
 * Exact byte ranges fetched ahead for phase B (chunk index nodes), keyed by
 * offset. The prefetcher lists each dataset's chunks on the main thread
 * while the worker is still walking (phase A), through the same layout
 * reader code phase B runs, so the ranges it fetches are the ones phase B
 * will ask for. Phase B takes a range once (it is then dropped); whatever is
 * left is dropped with the session. Bounded by `maxBytes`: past it, nothing
 * more is read ahead (phase B fetches the rest itself).
 */
import type { ByteSource } from "../hdf5/byteSource.ts";

interface Range {
  length: number;
  promise: Promise<Uint8Array>;
}

export interface RangeCacheStats {
  /** Ranges fetched ahead, bytes of them, and ranges phase B took. */
  fetches: number;
  bytes: number;
  taken: number;
}

export class RangeCache {
  readonly stats: RangeCacheStats = { fetches: 0, bytes: 0, taken: 0 };
  private readonly ranges = new Map<number, Range>();
  private held = 0;
  private closed = false;

  constructor(
    private readonly source: ByteSource,
    private readonly maxBytes: number,
  ) {}

  /** True when no more ranges can be kept. */
  get full(): boolean {
    return this.closed || this.held >= this.maxBytes;
  }

  /**
   * Reads [offset, offset+length) from the source and keeps it for phase B;
   * null when it would not fit (nothing is fetched then).
   */
  read(offset: number, length: number): Promise<Uint8Array> | null {
    const have = this.ranges.get(offset);
    if (have && have.length >= length) return have.promise.then((b) => b.subarray(0, length));
    if (this.closed || this.held + length > this.maxBytes) return null;
    if (have) this.drop(offset, have);
    const promise = this.source.read(offset, length);
    this.stats.fetches++;
    this.stats.bytes += length;
    const range: Range = { length, promise };
    this.ranges.set(offset, range);
    this.held += length;
    // a failed fetch is not kept: phase B reads the range itself
    promise.catch(() => this.drop(offset, range));
    return promise;
  }

  /** The range at `offset` (fetched or in flight) if one of at least `length` bytes is held; dropped from the cache. */
  take(offset: number, length: number): Promise<Uint8Array> | null {
    const have = this.ranges.get(offset);
    if (!have || have.length < length) return null;
    this.drop(offset, have);
    this.stats.taken++;
    return have.promise.then((b) => (b.byteLength > length ? b.subarray(0, length) : b));
  }

  close(): void {
    this.closed = true;
    this.ranges.clear();
    this.held = 0;
  }

  private drop(offset: number, range: Range): void {
    if (this.ranges.get(offset) !== range) return;
    this.ranges.delete(offset);
    this.held -= range.length;
  }
}
