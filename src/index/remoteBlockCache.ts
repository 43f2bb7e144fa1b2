/**
 * Worker-side synchronous block cache: what h5wasm's lazily mounted file
 * reads through (a `SyncReader`). The file is cut into fixed blocks
 * (`blockSize`, 16–64 KiB); blocks are kept in an LRU bounded by `maxBytes`.
 * A read whose blocks are all cached returns at once; otherwise the missing
 * blocks of that read are fetched with one blocking request (consecutive
 * missing blocks form one run, i.e. one range request on the main side).
 * Large reads (raw data of the datasets LINDI inlines) bypass the blocks and
 * are fetched exactly, in pieces that fit the transfer area.
 *
 * An answer may carry blocks nobody asked for yet (the main side's prefetched
 * blocks, "pushed"): they are cached like fetched ones, and the first read of
 * each is reported back (`onPushedUsed`) so the main side's prefetch window
 * knows the walk has caught up with them.
 */
import { peekBlocks } from "./blockBytes.ts";

/** Fetches `runs` (flat [start, end) pairs): their bytes concatenated, plus pushed blocks (tag = block index); throws when it cannot. */
export type RunFetcher = (runs: number[], exact: boolean) => { data: Uint8Array; extras: { tag: number; bytes: Uint8Array }[] };

/** How many first reads of pushed blocks are collected before they are reported. */
const USED_REPORT_BATCH = 64;

export interface BlockCacheOptions {
  /** File size in bytes. */
  size: number;
  blockSize: number;
  /** Upper bound of cached bytes. */
  maxBytes: number;
  /** Largest answer one request may carry (the transfer area). */
  maxRequestBytes: number;
  /** Reads needing more than this many uncached bytes bypass the cache. Default: max(4 blocks, maxBytes / 8) capped by maxBytes / 2. */
  bypassBytes?: number;
  /** Told the block indexes of pushed blocks read for the first time (in batches, and before every request). */
  onPushedUsed?: (blocks: number[]) => void;
}

export interface BlockCacheStats {
  /** Reads served. */
  reads: number;
  /** Reads answered from cached blocks only. */
  hits: number;
  /** Blocking requests made (each one a wait on the main thread). */
  requests: number;
  blocksFetched: number;
  /** Bytes received (blocks and exact ranges). */
  bytesFetched: number;
  /** Reads that bypassed the cache. */
  bypassReads: number;
  evictions: number;
  /** Blocks received without being asked for, and those of them read later. */
  blocksPushed: number;
  pushedUsed: number;
}

export class SyncBlockCache {
  readonly stats: BlockCacheStats = {
    reads: 0,
    hits: 0,
    requests: 0,
    blocksFetched: 0,
    bytesFetched: 0,
    bypassReads: 0,
    evictions: 0,
    blocksPushed: 0,
    pushedUsed: 0,
  };
  readonly size: number;
  readonly blockSize: number;
  private readonly maxBytes: number;
  private readonly maxRequestBytes: number;
  private readonly bypassBytes: number;
  /** Block index → bytes; Map order is the LRU order (oldest first). */
  private readonly blocks = new Map<number, Uint8Array>();
  private cachedBytes = 0;
  /** Pushed blocks not read yet. */
  private readonly unread = new Set<number>();
  private used: number[] = [];
  private readonly onPushedUsed: ((blocks: number[]) => void) | undefined;

  constructor(
    opts: BlockCacheOptions,
    private readonly fetchRuns: RunFetcher,
  ) {
    if (!Number.isSafeInteger(opts.blockSize) || opts.blockSize <= 0) throw new RangeError(`invalid block size ${opts.blockSize}`);
    if (opts.maxRequestBytes < opts.blockSize) throw new RangeError("the transfer area must hold at least one block");
    this.size = opts.size;
    this.blockSize = opts.blockSize;
    this.maxBytes = Math.max(opts.maxBytes, 2 * opts.blockSize);
    this.maxRequestBytes = opts.maxRequestBytes;
    this.bypassBytes =
      opts.bypassBytes ?? Math.min(Math.max(4 * opts.blockSize, Math.floor(this.maxBytes / 8)), Math.floor(this.maxBytes / 2));
    this.onPushedUsed = opts.onPushedUsed;
  }

  /** Bytes held right now. */
  get bytes(): number {
    return this.cachedBytes;
  }

  /** The SyncReader: fills `target` with the bytes at `position`, returns how many (short at EOF). */
  read(target: Uint8Array, position: number): number {
    const n = Math.max(0, Math.min(target.length, this.size - position));
    if (n === 0) return 0;
    this.stats.reads++;
    const end = position + n;
    const bs = this.blockSize;
    const first = Math.floor(position / bs);
    const last = Math.floor((end - 1) / bs);
    let missing: number[] | null = null;
    for (let b = first; b <= last; b++) if (!this.blocks.has(b)) (missing ??= []).push(b);
    if (missing === null) {
      this.stats.hits++;
    } else if ((last - first + 1) * bs > this.bypassBytes) {
      this.stats.bypassReads++;
      this.fetchExact(target.subarray(0, n), position);
      return n;
    } else {
      // keep this read's cached blocks young so fetching the others cannot evict them
      for (let b = first; b <= last; b++) {
        const block = this.blocks.get(b);
        if (block) {
          this.blocks.delete(b);
          this.blocks.set(b, block);
        }
      }
      this.fetchBlocks(missing);
    }
    let at = 0;
    for (let b = first; b <= last; b++) {
      const block = this.blocks.get(b)!;
      // touch: move to the LRU's young end
      this.blocks.delete(b);
      this.blocks.set(b, block);
      if (this.unread.size > 0 && this.unread.delete(b)) this.markUsed(b);
      const from = b === first ? position - b * bs : 0;
      const to = Math.min(block.byteLength, end - b * bs);
      target.set(block.subarray(from, to), at);
      at += to - from;
    }
    return n;
  }

  /** The bytes at [offset, offset+length) when every block is cached (no fetch); else null. */
  peek(offset: number, length: number): Uint8Array | null {
    // copied: the reader owns its bytes
    return peekBlocks(offset, length, this.size, this.blockSize, (b) => this.blocks.get(b) ?? null, true);
  }

  /** Fetches missing blocks (sorted): consecutive ones as one run, as few requests as the transfer area allows. */
  private fetchBlocks(missing: number[]): void {
    const bs = this.blockSize;
    let runs: number[] = [];
    let bytes = 0;
    const flush = () => {
      if (runs.length === 0) return;
      const data = this.request(runs, false);
      let at = 0;
      for (let i = 0; i < runs.length; i += 2) {
        const start = runs[i]!;
        const end = runs[i + 1]!;
        for (let p = start; p < end; p += bs) {
          const len = Math.min(bs, end - p);
          if (at + len > data.byteLength) throw new Error("short answer to a block request");
          this.insert(p / bs, data.slice(at, at + len));
          this.stats.blocksFetched++;
          at += len;
        }
      }
      runs = [];
      bytes = 0;
    };
    for (const b of missing) {
      const start = b * bs;
      const end = Math.min(start + bs, this.size);
      const len = end - start;
      if (bytes + len > this.maxRequestBytes) flush();
      const lastEnd = runs.length > 0 ? runs[runs.length - 1]! : -1;
      if (lastEnd === start) runs[runs.length - 1] = end;
      else runs.push(start, end);
      bytes += len;
    }
    flush();
  }

  private fetchExact(target: Uint8Array, position: number): void {
    let at = 0;
    while (at < target.length) {
      const len = Math.min(this.maxRequestBytes, target.length - at);
      const data = this.request([position + at, position + at + len], true);
      if (data.byteLength < len) throw new Error("short answer to a range request");
      target.set(data.subarray(0, len), at);
      at += len;
    }
  }

  private markUsed(b: number): void {
    this.stats.pushedUsed++;
    this.used.push(b);
    if (this.used.length >= USED_REPORT_BATCH) this.reportUsed();
  }

  private reportUsed(): void {
    if (this.used.length === 0) return;
    const used = this.used;
    this.used = [];
    this.onPushedUsed?.(used);
  }

  private request(runs: number[], exact: boolean): Uint8Array {
    this.reportUsed();
    this.stats.requests++;
    const { data, extras } = this.fetchRuns(runs, exact);
    this.stats.bytesFetched += data.byteLength;
    // pushed blocks go in first: the caller's blocks, inserted after them, are the youngest
    for (const x of extras) {
      const b = x.tag;
      if (b < 0 || b * this.blockSize >= this.size || this.blocks.has(b)) continue;
      if (x.bytes.byteLength !== Math.min(this.blockSize, this.size - b * this.blockSize)) continue;
      this.insert(b, x.bytes.slice());
      this.unread.add(b);
      this.stats.blocksPushed++;
    }
    return data;
  }

  private insert(b: number, bytes: Uint8Array): void {
    const old = this.blocks.get(b);
    if (old) {
      this.cachedBytes -= old.byteLength;
      this.blocks.delete(b);
    }
    this.blocks.set(b, bytes);
    this.cachedBytes += bytes.byteLength;
    while (this.cachedBytes > this.maxBytes && this.blocks.size > 1) {
      const oldest = this.blocks.keys().next().value as number;
      this.cachedBytes -= this.blocks.get(oldest)!.byteLength;
      this.blocks.delete(oldest);
      this.stats.evictions++;
      // evicted unread: the main side would wait for its use forever; count it as used
      if (this.unread.delete(oldest)) this.used.push(oldest);
    }
  }
}
