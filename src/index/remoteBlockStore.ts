/**
 * Main-thread block store of one build: the blocks fetched for the worker's
 * block cache and by the prefetcher, keyed by block index, with in-flight
 * fetches shared (a block is never requested twice at once). Consecutive
 * missing blocks are fetched with one range request. Bounded by `maxBytes`
 * (least recently used resolved blocks are dropped first).
 */
import type { ByteSource } from "../hdf5/byteSource.ts";
import { blockSpan, joinBlocks, peekBlocks } from "./blockBytes.ts";

interface Entry {
  promise: Promise<Uint8Array>;
  data: Uint8Array | null;
  /** Fetched by the prefetcher and not used by the worker yet (counts against the window). */
  prefetched: boolean;
  /** Handed to the worker without being asked for (see takePushable). */
  pushed: boolean;
}

export type FetchOrigin = "demand" | "prefetch";

export interface BlockStoreStats {
  /** Range requests sent for blocks. */
  fetches: number;
  blocksFetched: number;
  bytesFetched: number;
  /** Of those, fetched by the prefetcher. */
  prefetchFetches: number;
  prefetchBytes: number;
  /** Blocks the worker asked for that the prefetcher had fetched (resolved or in flight). */
  prefetchedBlocksUsed: number;
  /** Prefetched blocks handed to the worker with another answer. */
  blocksPushed: number;
  evictions: number;
}

/** What answering a demand request took. */
export interface DemandResult {
  parts: Uint8Array[];
  /** A new range request had to be sent. */
  fetched: boolean;
  /** Waited for a fetch already in flight (usually the prefetcher's). */
  awaitedInFlight: boolean;
}

export class BlockStore {
  readonly stats: BlockStoreStats = {
    fetches: 0,
    blocksFetched: 0,
    bytesFetched: 0,
    prefetchFetches: 0,
    prefetchBytes: 0,
    prefetchedBlocksUsed: 0,
    blocksPushed: 0,
    evictions: 0,
  };
  private readonly entries = new Map<number, Entry>();
  private heldBytes = 0;
  private closed = false;
  private outstanding = 0;
  /** Called whenever prefetched blocks are used (or dropped) by the worker side. */
  onPrefetchRelease: (() => void) | null = null;

  constructor(
    private readonly source: ByteSource,
    readonly blockSize: number,
    private readonly maxBytes: number,
  ) {}

  get size(): number {
    return this.source.size;
  }

  /** Bytes fetched by the prefetcher that the worker has not asked for yet. */
  get prefetchOutstanding(): number {
    return this.outstanding;
  }

  /** Drops every block; later calls fetch nothing. */
  close(): void {
    this.closed = true;
    this.entries.clear();
    this.heldBytes = 0;
    this.outstanding = 0;
    this.onPrefetchRelease?.();
  }

  private release(e: Entry): void {
    if (!e.prefetched) return;
    e.prefetched = false;
    this.outstanding -= this.blockSize;
    this.onPrefetchRelease?.();
  }

  /**
   * Blocks `first..last` (inclusive) for a worker request: the bytes of
   * each, fetching the missing ones (one request per run of consecutive
   * missing blocks).
   */
  async demand(first: number, last: number): Promise<DemandResult> {
    const { entries, fetched } = this.ensure(first, last, "demand");
    let awaitedInFlight = false;
    for (const e of entries) {
      if (e.prefetched) {
        this.stats.prefetchedBlocksUsed++;
        this.release(e);
      }
      if (e.data === null && !fetched.has(e)) awaitedInFlight = true;
    }
    const parts = await Promise.all(entries.map((e) => e.promise));
    return { parts, fetched: fetched.size > 0, awaitedInFlight };
  }

  /**
   * Prefetched blocks that have arrived and were neither asked for nor
   * handed over yet, oldest first, up to `maxBytes` (each costs `perBlock`
   * bytes more): the worker gets them with its next answer. They stay in the
   * prefetch window until the worker reports reading them (markUsed).
   */
  takePushable(maxBytes: number, perBlock: number): { tag: number; bytes: Uint8Array }[] {
    const out: { tag: number; bytes: Uint8Array }[] = [];
    let room = maxBytes;
    for (const [b, e] of this.entries) {
      // tags cross the bridge as Int32: blocks past 2^31 (files over 32 TiB at 16 KiB) are not pushed
      if (!e.prefetched || e.pushed || e.data === null || b > 0x7fffffff) continue;
      if (e.data.byteLength + perBlock > room) break;
      room -= e.data.byteLength + perBlock;
      e.pushed = true;
      out.push({ tag: b, bytes: e.data });
    }
    this.stats.blocksPushed += out.length;
    return out;
  }

  /** The worker read (or dropped) these pushed blocks: they leave the prefetch window. */
  markUsed(blocks: readonly number[]): void {
    for (const b of blocks) {
      const e = this.entries.get(b);
      if (e?.pushed && e.prefetched) {
        this.stats.prefetchedBlocksUsed++;
        this.release(e);
      }
    }
  }

  /**
   * Makes sure the blocks covering [offset, offset+length) are fetched or in
   * flight, for the prefetcher. Returns the number of bytes newly requested.
   */
  prefetch(offset: number, length: number): { newBytes: number; done: Promise<void> } {
    const span = blockSpan(offset, length, this.size, this.blockSize);
    if (!span || this.closed) return { newBytes: 0, done: Promise.resolve() };
    const { first, last } = span;
    const { entries, fetched } = this.ensure(first, last, "prefetch");
    let newBytes = 0;
    for (const e of fetched) newBytes += this.blockBytes(e);
    return { newBytes, done: Promise.all(entries.map((e) => e.promise)).then(() => undefined) };
  }

  /** The bytes of [offset, offset+length) through the blocks (fetching missing ones as the prefetcher). */
  async readRange(offset: number, length: number): Promise<Uint8Array> {
    const bs = this.blockSize;
    const span = blockSpan(offset, length, this.size, bs);
    if (!span) return new Uint8Array(0);
    const { first, last, end } = span;
    const { entries } = this.ensure(first, last, "prefetch");
    const parts = await Promise.all(entries.map((e) => e.promise));
    return joinBlocks(parts, first, offset, end, bs);
  }

  /** The bytes of [offset, offset+length) if every block is already here (resolved); else null. */
  peek(offset: number, length: number): Uint8Array | null {
    return peekBlocks(offset, length, this.size, this.blockSize, (b) => this.entries.get(b)?.data ?? null);
  }

  /** Bytes a prefetch of [offset, offset+length) would newly request (0 when all are here or in flight). */
  missingBytes(offset: number, length: number): number {
    const bs = this.blockSize;
    const span = blockSpan(offset, length, this.size, bs);
    if (!span) return 0;
    let n = 0;
    for (let b = span.first; b <= span.last; b++) {
      if (!this.entries.has(b)) n += Math.min(bs, this.size - b * bs);
    }
    return n;
  }

  private blockBytes(e: Entry): number {
    return e.data?.byteLength ?? this.blockSize;
  }

  private ensure(first: number, last: number, origin: FetchOrigin): { entries: Entry[]; fetched: Set<Entry> } {
    const out: Entry[] = [];
    const fetched = new Set<Entry>();
    let runStart = -1;
    const flush = (endBlock: number) => {
      if (runStart < 0) return;
      for (const e of this.fetchRun(runStart, endBlock, origin)) fetched.add(e);
      runStart = -1;
    };
    for (let b = first; b <= last; b++) {
      const e = this.entries.get(b);
      if (e) {
        flush(b - 1);
        // touch
        this.entries.delete(b);
        this.entries.set(b, e);
      } else if (runStart < 0) {
        runStart = b;
      }
    }
    flush(last);
    for (let b = first; b <= last; b++) out.push(this.entries.get(b)!);
    this.evict();
    return { entries: out, fetched };
  }

  /** One range request for blocks first..last; one entry per block. */
  private fetchRun(first: number, last: number, origin: FetchOrigin): Entry[] {
    const bs = this.blockSize;
    const start = first * bs;
    const end = Math.min((last + 1) * bs, this.size);
    this.stats.fetches++;
    if (origin === "prefetch") {
      this.stats.prefetchFetches++;
      this.stats.prefetchBytes += end - start;
    }
    const whole = this.source.read(start, end - start).then((buf) => {
      if (buf.byteLength < end - start) throw new Error(`short read: ${buf.byteLength} of ${end - start} bytes at ${start}`);
      this.stats.bytesFetched += buf.byteLength;
      return buf;
    });
    const created: Entry[] = [];
    for (let b = first; b <= last; b++) {
      const from = b * bs - start;
      const to = Math.min(from + bs, end - start);
      const entry: Entry = { promise: null as unknown as Promise<Uint8Array>, data: null, prefetched: origin === "prefetch", pushed: false };
      entry.promise = whole.then(
        (buf) => {
          const part = buf.subarray(from, to);
          entry.data = part;
          return part;
        },
        (err: unknown) => {
          // a failed fetch must not stay: the next request tries again
          if (this.entries.get(b) === entry) {
            this.entries.delete(b);
            this.heldBytes -= bs;
          }
          this.release(entry);
          throw err;
        },
      );
      entry.promise.catch(() => undefined); // callers see the error; no unhandled rejection here
      if (entry.prefetched) this.outstanding += bs;
      this.entries.set(b, entry);
      this.heldBytes += bs;
      created.push(entry);
    }
    this.stats.blocksFetched += last - first + 1;
    return created;
  }

  private evict(): void {
    if (this.heldBytes <= this.maxBytes) return;
    for (const [b, e] of this.entries) {
      if (this.heldBytes <= this.maxBytes) break;
      if (e.data === null) continue; // in flight
      this.entries.delete(b);
      this.heldBytes -= this.blockSize;
      this.stats.evictions++;
      this.release(e);
    }
  }
}
