/**
 * Prefetching for phase A. h5wasm's walk is a long chain of dependent reads
 * (object header → symbol table → B-tree node → symbol node → child object
 * header → attributes → global heap collection …), each a blocking round
 * trip when it misses the block cache. Most of that chain is knowable in
 * advance by parsing the same structures asynchronously: this crawler walks
 * the group tree from the superblock on the main thread, many reads in
 * flight, and fetches into the build's block store the blocks the walk is
 * about to need:
 *
 *   - the first `headBytes` of the file (superblock, root group, early metadata);
 *   - every object header reached by hard links (with continuation chunks);
 *   - group structures: symbol-table B-tree nodes, symbol nodes, local heaps;
 *     compact link messages; the fractal heap of dense link/attribute storage
 *     (header and root direct block);
 *   - global heap collections holding variable-length attribute values;
 *   - the raw data of the datasets LINDI inlines (small contiguous or chunked
 *     ones), and the global heap collections of vlen string datasets;
 *   - last (after everything the walk needs), the chunk indexes of the other
 *     chunked datasets, as exact ranges into a RangeCache that phase B takes
 *     its reads from: phase B's round trips then overlap phase A.
 *
 * It reads through the same block store the worker's requests go to, so a
 * prefetched block (or one still in flight) is handed to the worker without
 * a new request. Everything here is best effort: a parse error or the byte
 * budget ends a branch of the crawl, never the build.
 */
import type { ByteSource } from "../hdf5/byteSource.ts";
import { elementCount } from "../hdf5/dtype.ts";
import { Hdf5LayoutReader, type DatasetLayoutInfo } from "../hdf5/layout/index.ts";
import { readFractalHeapHeader } from "../hdf5/layout/fractalHeap.ts";
import { readObjectHeader, type RawMessage } from "../hdf5/layout/objectHeader.ts";
import { Cursor, FileIo, type SizeContext } from "../hdf5/layout/reader.ts";
import { CoalescingByteSource } from "../hdf5/coalescingSource.ts";
import { decodeDataspace } from "../hdf5/layout/messages/dataspace.ts";
import { chunkGridCells } from "../lindi/byteRangeArray.ts";
import type { BlockStore } from "./remoteBlockStore.ts";
import type { RangeCache } from "./remoteRangeCache.ts";

export interface PrefetchOptions {
  /** Bytes at the start of the file fetched at once. Default 64 KiB; 0 disables. */
  headBytes?: number;
  /** Crawl the group tree ahead of the walk. Default true. */
  crawl?: boolean;
  /**
   * Most prefetched bytes the worker has not used yet; the crawl pauses at
   * this and resumes as the walk catches up (bounds memory). Default 16 MiB.
   */
  windowBytes?: number;
  /** Most bytes the prefetcher may request per build. Default 1 GiB. */
  maxBytes?: number;
  /** Crawl steps in flight. Default 32. */
  concurrency?: number;
  /** Largest raw data of one inline dataset that is prefetched. Default 256 KiB. */
  maxDatasetBytes?: number;
  /** Prefetch the chunk indexes phase B will read (needs a RangeCache). Default true. */
  chunkIndexes?: boolean;
  /** The build's chunks threshold: datasets with more chunks become external array links, their index is not read. */
  chunksThreshold?: number | null;
}

export const DEFAULT_PREFETCH: Required<PrefetchOptions> = {
  headBytes: 64 * 1024,
  crawl: true,
  windowBytes: 16 * 1024 * 1024,
  maxBytes: 1024 * 1024 * 1024,
  concurrency: 128,
  maxDatasetBytes: 256 * 1024,
  chunkIndexes: true,
  chunksThreshold: null,
};

/** Chunk-index steps run after every step the walk waits for. */
const AFTER_THE_WALK = Number.MAX_SAFE_INTEGER;

export interface PrefetchStats {
  objects: number;
  groups: number;
  datasets: number;
  collections: number;
  /** Chunk indexes read ahead for phase B. */
  chunkIndexes: number;
  /** Bytes newly requested by the prefetcher. */
  bytes: number;
  /** Steps that failed (unparsable or unsupported structures; ignored). */
  errors: number;
  /** Times the crawl paused because the window was full. */
  stalls: number;
  /** True when `maxBytes` stopped the crawl. */
  budgetExhausted: boolean;
  /** Milliseconds until the crawl finished or was stopped (null while running). */
  millis: number | null;
}

const MSG_LINK_INFO = 0x0002;
const MSG_DATATYPE = 0x0003;
const MSG_LINK = 0x0006;
const MSG_LAYOUT = 0x0008;
const MSG_ATTRIBUTE = 0x000c;
const MSG_SYMBOL_TABLE = 0x0011;
const MSG_ATTRIBUTE_INFO = 0x0015;
const FLAG_SHARED = 0x02;

/** Default B-tree K values (HDF5's defaults: internal group nodes 16, leaf/symbol nodes 4). */
const GROUP_INTERNAL_K = 16;
const GROUP_LEAF_K = 4;
const MAX_BTREE_DEPTH = 32;

class BudgetExhausted extends Error {}
class Stopped extends Error {}

/**
 * Position of a step in the walk's order: h5wasm walks depth first, children
 * in name order, an object's attributes before its children. Keys compare
 * lexicographically; a step's own structures (heaps, attributes' collections,
 * inline data) get `[...key, -1]`, its children `[...key, i, ...]`.
 */
type Key = readonly number[];

function compareKeys(a: Key, b: Key): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return a[i]! - b[i]!;
  return a.length - b.length;
}

interface Step {
  key: Key;
  seq: number;
  run: () => Promise<void>;
}

/** Min-heap of steps by walk order (then by scheduling order). */
class StepQueue {
  private readonly heap: Step[] = [];
  get length(): number {
    return this.heap.length;
  }
  clear(): void {
    this.heap.length = 0;
  }
  private less(i: number, j: number): boolean {
    const a = this.heap[i]!;
    const b = this.heap[j]!;
    const c = compareKeys(a.key, b.key);
    return c < 0 || (c === 0 && a.seq < b.seq);
  }
  private swap(i: number, j: number): void {
    const t = this.heap[i]!;
    this.heap[i] = this.heap[j]!;
    this.heap[j] = t;
  }
  push(s: Step): void {
    const h = this.heap;
    h.push(s);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      this.swap(i, p);
      i = p;
    }
  }
  pop(): Step | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(l, m)) m = l;
        if (r < h.length && this.less(r, m)) m = r;
        if (m === i) break;
        this.swap(i, m);
        i = m;
      }
    }
    return top;
  }
}

export class Prefetcher {
  readonly stats: PrefetchStats = {
    objects: 0,
    groups: 0,
    datasets: 0,
    collections: 0,
    chunkIndexes: 0,
    bytes: 0,
    errors: 0,
    stalls: 0,
    budgetExhausted: false,
    millis: null,
  };
  private readonly opts: Required<PrefetchOptions>;
  private stopped = false;
  private readonly seen = new Set<string>();
  private readonly queue = new StepQueue();
  private seq = 0;
  private running = 0;
  private idle: (() => void) | null = null;
  private waiters: (() => void)[] = [];
  private readonly source: ByteSource;
  private io: FileIo | null = null;
  private layout: Hdf5LayoutReader | null = null;
  /** A layout reader whose reads of unfetched bytes go to the range cache (chunk indexes). */
  private exactLayout: Promise<Hdf5LayoutReader> | null = null;
  private readonly started = performance.now();

  constructor(
    private readonly store: BlockStore,
    opts: PrefetchOptions,
    private readonly ranges: RangeCache | null = null,
  ) {
    this.opts = { ...DEFAULT_PREFETCH, ...opts };
    this.source = {
      get size() {
        return store.size;
      },
      read: (offset, length) => this.read(offset, length),
    };
    store.onPrefetchRelease = () => this.wake();
  }

  /** Starts in the background; the promise resolves when the crawl ends (never rejects). */
  start(): Promise<void> {
    return this.run()
      .catch(() => undefined)
      .finally(() => {
        this.stats.millis ??= performance.now() - this.started;
      });
  }

  /** Ends the crawl (phase A is over, or the build ended). */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stats.millis ??= performance.now() - this.started;
    this.queue.clear();
    this.wake();
    this.idle?.();
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }

  private async run(): Promise<void> {
    if (this.opts.headBytes > 0) await this.fetch(0, Math.min(this.opts.headBytes, this.store.size));
    if (!this.opts.crawl) return;
    this.layout = await Hdf5LayoutReader.open(this.source);
    const sb = this.layout.superblock;
    const ctx: SizeContext = { offsetSize: sb.offsetSize, lengthSize: sb.lengthSize, baseAddress: sb.baseAddress };
    this.io = new FileIo(this.source, ctx);
    if (sb.extensionAddress !== null) {
      this.schedule("o", sb.extensionAddress + sb.baseAddress, [-1], (a, k) => this.visitObject(a, k));
    }
    this.schedule("o", sb.rootObjectHeaderAddress + sb.baseAddress, [0], (a, k) => this.visitObject(a, k));
    await new Promise<void>((resolve) => {
      this.idle = resolve;
      this.pump();
    });
  }

  // ---- scheduling --------------------------------------------------------------

  private schedule(kind: string, address: number, key: Key, step: (address: number, key: Key) => Promise<void>): void {
    if (this.stopped) return;
    const id = `${kind}${address}`;
    if (this.seen.has(id)) return;
    this.seen.add(id);
    this.queue.push({ key, seq: this.seq++, run: () => step(address, key) });
    this.pump();
  }

  private pump(): void {
    while (!this.stopped && this.running < this.opts.concurrency && this.queue.length > 0) {
      const step = this.queue.pop()!;
      this.running++;
      step
        .run()
        .catch((e: unknown) => {
          if (e instanceof BudgetExhausted) {
            this.stats.budgetExhausted = true;
            this.stop();
          } else if (!(e instanceof Stopped)) {
            this.stats.errors++;
          }
        })
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
    if (this.running === 0 && (this.queue.length === 0 || this.stopped)) this.idle?.();
  }

  /** Waits until `n` more bytes fit the window (always lets one request through when nothing is outstanding). */
  private async room(offset: number, length: number): Promise<void> {
    // a structure this large is corrupt or not worth the bytes; skip it
    if (length > this.opts.windowBytes) throw new Error(`${length} bytes at ${offset} are too many to prefetch`);
    for (;;) {
      if (this.stopped) throw new Stopped();
      const n = this.store.missingBytes(offset, length);
      if (n === 0) return;
      const out = this.store.prefetchOutstanding;
      if (out === 0 || out + n <= this.opts.windowBytes) {
        if (this.stats.bytes + n > this.opts.maxBytes) throw new BudgetExhausted();
        this.stats.bytes += n;
        return;
      }
      this.stats.stalls++;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  /** Reads through the block store (the crawler's own reads). */
  private async read(offset: number, length: number): Promise<Uint8Array> {
    await this.room(offset, length);
    return this.store.readRange(offset, length);
  }

  /** Starts fetching [offset, offset+length) into the store without waiting for the bytes. */
  private async fetch(offset: number, length: number): Promise<void> {
    await this.room(offset, length);
    this.store.prefetch(offset, length).done.catch(() => undefined);
  }

  // ---- steps --------------------------------------------------------------------

  private async visitObject(address: number, key: Key): Promise<void> {
    const io = this.io!;
    const oh = await readObjectHeader(io, address);
    this.stats.objects++;
    const own = [...key, -1];
    let isDataset = false;
    const links: { name: string; address: number }[] = [];
    for (const m of oh.messages) {
      const shared = (m.flags & FLAG_SHARED) !== 0;
      switch (m.type) {
        case MSG_SYMBOL_TABLE: {
          this.stats.groups++;
          const c = io.cursor(m.data, m.position, "symbol table message");
          const btree = c.offset();
          const heap = c.offset();
          if (heap !== null) this.schedule("h", heap, own, (a) => this.visitLocalHeap(a));
          if (btree !== null) this.schedule("b", btree, [...key, 0], (a, k) => this.visitGroupBtree(a, k, 0));
          break;
        }
        case MSG_LINK: {
          const link = parseLink(m.data, io.ctx, m.position);
          if (link?.address != null) links.push({ name: link.name, address: link.address });
          break;
        }
        case MSG_LINK_INFO: {
          this.stats.groups++;
          const c = io.cursor(m.data, m.position, "link info message");
          c.u8();
          const flags = c.u8();
          if (flags & 0x01) c.skip(8);
          const heap = c.offset();
          const nameIndex = c.offset();
          if (nameIndex !== null) this.schedule("v", nameIndex, own, (a) => this.visitBtreeV2(a));
          if (heap !== null) this.schedule("f", heap, [...key, 0], (a, k) => this.visitFractalHeap(a, k, true));
          break;
        }
        case MSG_ATTRIBUTE_INFO: {
          const c = io.cursor(m.data, m.position, "attribute info message");
          c.u8();
          const flags = c.u8();
          if (flags & 0x01) c.skip(2);
          const heap = c.offset();
          const nameIndex = c.offset();
          if (heap !== null) this.schedule("f", heap, own, (a, k) => this.visitFractalHeap(a, k, false));
          if (nameIndex !== null) this.schedule("v", nameIndex, own, (a) => this.visitBtreeV2(a));
          break;
        }
        case MSG_ATTRIBUTE:
          if (!shared) {
            for (const gcol of attributeCollections(m, io.ctx)) {
              this.schedule("g", gcol, own, (a) => this.visitCollection(a));
            }
          }
          break;
        case MSG_DATATYPE:
          if (shared) {
            const target = sharedObjectHeader(m, io.ctx);
            if (target !== null) this.schedule("o", target, own, (a, k) => this.visitObject(a, k));
          }
          break;
        case MSG_LAYOUT:
          isDataset = true;
          break;
      }
    }
    if (isDataset) this.schedule("d", address, own, (a, k) => this.visitDatasetData(a, k));
    this.scheduleChildren(links, key);
  }

  /** Children in the walk's order (by name). */
  private scheduleChildren(links: { name: string; address: number }[], key: Key): void {
    links.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    links.forEach((l, i) => this.schedule("o", l.address, [...key, i], (a, k) => this.visitObject(a, k)));
  }

  private async visitLocalHeap(address: number): Promise<void> {
    const io = this.io!;
    const { lengthSize: L, offsetSize: O } = io.ctx;
    const buf = await io.read(address, 8 + 2 * L + O, "local heap");
    const c = io.cursor(buf, address, "local heap");
    c.signature("HEAP");
    c.skip(4);
    const size = c.length();
    c.length(); // free list offset
    const data = c.offset();
    if (data !== null && size > 0) await this.fetch(data, size);
  }

  private async visitGroupBtree(address: number, key: Key, depth: number): Promise<void> {
    if (depth > MAX_BTREE_DEPTH) return;
    const io = this.io!;
    const { lengthSize: L, offsetSize: O } = io.ctx;
    const prefix = 8 + 2 * O;
    // what HDF5 reads: the whole node (2K children, 2K+1 keys)
    const full = prefix + (2 * GROUP_INTERNAL_K + 1) * L + 2 * GROUP_INTERNAL_K * O;
    let buf = await io.readUpTo(address, full, prefix, "group B-tree node");
    const c = io.cursor(buf, address, "group B-tree node");
    c.signature("TREE");
    const type = c.u8();
    if (type !== 0) return;
    const level = c.u8();
    const used = c.u16();
    const need = prefix + used * (L + O) + L;
    if (need > buf.length) buf = await io.read(address, need, "group B-tree node");
    const body = io.cursor(buf, address, "group B-tree node");
    body.seek(prefix);
    for (let i = 0; i < used; i++) {
      body.skip(L);
      const child = body.offset();
      if (child === null) continue;
      if (level > 0) this.schedule("b", child, [...key, i], (a, k) => this.visitGroupBtree(a, k, depth + 1));
      else this.schedule("s", child, [...key, i], (a, k) => this.visitSymbolNode(a, k));
    }
  }

  private async visitSymbolNode(address: number, key: Key): Promise<void> {
    const io = this.io!;
    const { lengthSize: L, offsetSize: O } = io.ctx;
    const entry = L + O + 24;
    let buf = await io.readUpTo(address, 8 + 2 * GROUP_LEAF_K * entry, 8, "symbol table node");
    const c = io.cursor(buf, address, "symbol table node");
    c.signature("SNOD");
    c.skip(2);
    const n = c.u16();
    if (8 + n * entry > buf.length) buf = await io.read(address, 8 + n * entry, "symbol table node");
    const body = io.cursor(buf, address, "symbol table node");
    body.seek(8);
    // entries are sorted by name: their order is the walk's
    for (let i = 0; i < n; i++) {
      body.skip(L);
      const obj = body.offset();
      body.skip(24);
      if (obj !== null) this.schedule("o", obj, [...key, i], (a, k) => this.visitObject(a, k));
    }
  }

  /**
   * Dense link or attribute storage: the heap header and its direct blocks
   * (root direct block, or the direct blocks of the root indirect block).
   * For links, the link messages in the blocks are parsed in order (objects
   * of a heap that was only ever appended to sit back to back) to reach the
   * children's object headers.
   */
  private async visitFractalHeap(address: number, key: Key, links: boolean): Promise<void> {
    const io = this.io!;
    const h = await readFractalHeapHeader(io, address);
    if (h.rootBlockAddress === null || h.filterInfoLength > 0) return;
    const blocks: { address: number; size: number }[] = [];
    if (h.currentRootRows === 0) {
      blocks.push({ address: h.rootBlockAddress, size: h.startBlockSize });
    } else {
      const { offsetSize: O } = io.ctx;
      const rows = Math.min(h.currentRootRows, h.maxDirectRows);
      const prefix = 5 + O + h.heapOffsetSize;
      const buf = await io.read(h.rootBlockAddress, prefix + rows * h.tableWidth * O, "fractal heap indirect block");
      const c = io.cursor(buf, h.rootBlockAddress, "fractal heap indirect block");
      c.signature("FHIB");
      c.seek(prefix);
      for (let row = 0; row < rows; row++) {
        for (let col = 0; col < h.tableWidth; col++) {
          const a = c.offset();
          if (a !== null) blocks.push({ address: a, size: h.rowBlockSize[row]! });
        }
      }
    }
    if (!links) {
      for (const b of blocks) await this.fetch(b.address, b.size);
      return;
    }
    const headerSize = 5 + io.ctx.offsetSize + h.heapOffsetSize + (h.flags & 0x02 ? 4 : 0);
    const found = await Promise.all(
      blocks.map(async (b) => {
        const data = await this.read(b.address, b.size);
        return packedLinks(data.subarray(headerSize), io.ctx, b.address + headerSize);
      }),
    );
    this.scheduleChildren(found.flat(), key);
  }

  /** A v2 B-tree (dense storage name index): its header and root node. */
  private async visitBtreeV2(address: number): Promise<void> {
    const io = this.io!;
    const { offsetSize: O, lengthSize: L } = io.ctx;
    const size = 4 + 1 + 1 + 4 + 2 + 2 + 1 + 1 + O + 2 + L + 4;
    const buf = await io.read(address, size, "v2 B-tree header");
    const c = io.cursor(buf, address, "v2 B-tree header");
    c.signature("BTHD");
    c.skip(2);
    const nodeSize = c.u32();
    c.skip(2 + 2 + 2);
    const root = c.offset();
    if (root !== null && nodeSize > 0) await this.fetch(root, nodeSize);
  }

  private async visitCollection(address: number): Promise<void> {
    const io = this.io!;
    const L = io.ctx.lengthSize;
    const buf = await io.read(address, 8 + L, "global heap collection");
    const c = io.cursor(buf, address, "global heap collection");
    c.signature("GCOL");
    c.skip(4);
    const size = c.length();
    this.stats.collections++;
    if (size > 8 + L) await this.fetch(address, size);
  }

  private async visitDatasetData(address: number, key: Key): Promise<void> {
    const layout = this.layout!;
    const info = await layout.readDataset(address - layout.superblock.baseAddress);
    this.stats.datasets++;
    if (!info.shape || info.externalFiles) return;
    const count = elementCount(info.shape);
    if (count === 0) return;
    if (!inlinedByLindi(info, count)) {
      this.scheduleChunkIndex(info, address, key);
      return;
    }
    const max = this.opts.maxDatasetBytes;
    const l = info.layout;
    if (l.kind === "contiguous") {
      if (l.address === null || l.size <= 0 || l.size > max) return;
      if (info.datatype.class === 9 && info.filters.length === 0) {
        // vlen: the elements point into global heap collections
        const data = await this.read(l.address, l.size);
        for (const gcol of vlenCollections(data, count, info.datatype.size, this.io!.ctx)) {
          this.schedule("g", gcol, key, (a) => this.visitCollection(a));
        }
      } else {
        await this.fetch(l.address, l.size);
      }
    } else if (l.kind === "chunked") {
      if (count * info.elementSize > 16 * max) return;
      const chunks = await layout.listChunks(info);
      let total = 0;
      for (const ch of chunks) total += ch.size;
      if (total > max) return;
      for (const ch of chunks) await this.fetch(ch.offset, ch.size);
    }
  }

  /** Phase B will list this dataset's chunks: read its chunk index ahead, once the walk's own steps are out. */
  private scheduleChunkIndex(info: DatasetLayoutInfo, address: number, key: Key): void {
    const l = info.layout;
    if (!this.ranges || !this.opts.chunkIndexes || l.kind !== "chunked" || l.indexType === "single-chunk") return;
    const threshold = this.opts.chunksThreshold;
    if (threshold !== null && chunkGridCells(info.shape!, l.chunkShape.slice(0, info.shape!.length)) > threshold) return;
    this.schedule("c", address, [AFTER_THE_WALK, ...key], async () => {
      if (this.ranges!.full) return;
      this.exactLayout ??= Hdf5LayoutReader.open(this.exactSource());
      await (await this.exactLayout).listChunks(info);
      this.stats.chunkIndexes++;
    });
  }

  /**
   * Reads for chunk indexes: from the block store when it has the bytes,
   * else exact ranges kept for phase B — merged as phase B's worker merges
   * them (CoalescingByteSource), so that phase B asks for the same ranges.
   */
  private exactSource(): ByteSource {
    const store = this.store;
    const ahead = new CoalescingByteSource({
      size: store.size,
      read: async (offset, length) => {
        if (this.stopped) throw new Stopped();
        if (this.stats.bytes + length > this.opts.maxBytes) throw new BudgetExhausted();
        const read = this.ranges!.read(offset, length);
        // no room left: phase B reads the rest of this index itself
        if (!read) throw new Stopped();
        this.stats.bytes += length;
        return read;
      },
    });
    return {
      size: store.size,
      read: async (offset, length) => {
        if (this.stopped) throw new Stopped();
        return store.peek(offset, length) ?? ahead.read(offset, length);
      },
    };
  }
}

/** LINDI's inline rule (spec §5.4) on the layout reader's view of the type: numeric below 1000 elements, everything else always. */
function inlinedByLindi(info: DatasetLayoutInfo, count: number): boolean {
  if (info.shape!.length === 0) return true;
  const cls = info.datatype.class;
  const numeric = cls === 0 || cls === 1 || cls === 4 || cls === 8;
  return numeric ? count < 1000 : true;
}

/** A link message: its name and, for a hard link, the target; null when it is not a version 1 link message. */
function parseLink(data: Uint8Array, ctx: SizeContext, position: number): { name: string; address: number | null; size: number } | null {
  const c = new Cursor(data, ctx, "link message", position);
  if (c.u8() !== 1) return null;
  const flags = c.u8();
  if (flags & 0xe0) return null;
  const type = flags & 0x08 ? c.u8() : 0;
  if (flags & 0x04) c.skip(8);
  if (flags & 0x10) c.skip(1);
  const nameLen = c.uvar(1 << (flags & 0x03));
  if (nameLen === 0) return null;
  const name = latin1(c.bytes(nameLen));
  let address: number | null = null;
  if (type === 0) address = c.offset();
  else c.skip(c.u16());
  return { name, address, size: c.pos };
}

/** Names compare like HDF5 compares them (bytes); latin1 keeps byte order. */
function latin1(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += String.fromCharCode(b[i]!);
  return s;
}

/** Hard links among link messages stored back to back (a fractal heap direct block); stops at the first non-link. */
function packedLinks(data: Uint8Array, ctx: SizeContext, position: number): { name: string; address: number }[] {
  const out: { name: string; address: number }[] = [];
  let at = 0;
  try {
    while (data.length - at > 4) {
      const link = parseLink(data.subarray(at), ctx, position + at);
      if (!link) break;
      if (link.address !== null) out.push({ name: link.name, address: link.address });
      at += link.size;
    }
  } catch {
    // end of the packed objects (or free space): what was found so far stands
  }
  return out;
}

/** Object header address of a shared (committed) message, else null. */
function sharedObjectHeader(m: RawMessage, ctx: SizeContext): number | null {
  const c = new Cursor(m.data, ctx, "shared message", m.position);
  const version = c.u8();
  const type = c.u8();
  if (version === 1) {
    c.skip(6 + ctx.lengthSize);
    return c.offset();
  }
  if (version === 2 || (version === 3 && type === 2)) return c.offset();
  return null;
}

/** Global heap collections referenced by a variable-length attribute's value. */
function attributeCollections(m: RawMessage, ctx: SizeContext): number[] {
  const c = new Cursor(m.data, ctx, "attribute message", m.position);
  const version = c.u8();
  if (version < 1 || version > 3) return [];
  const flags = c.u8();
  if (version > 1 && flags & 0x03) return []; // shared datatype or dataspace
  const nameSize = c.u16();
  const typeSize = c.u16();
  const spaceSize = c.u16();
  if (version === 3) c.skip(1);
  const pad = (n: number) => (version === 1 ? Math.ceil(n / 8) * 8 : n);
  c.skip(pad(nameSize));
  const typeStart = c.pos;
  c.skip(pad(typeSize));
  const spaceStart = c.pos;
  c.skip(pad(spaceSize));
  const cls = m.data[typeStart]! & 0x0f;
  if (cls !== 9) return [];
  const elementSize = new DataView(m.data.buffer, m.data.byteOffset + typeStart + 4, 4).getUint32(0, true);
  const space = decodeDataspace(m.data.subarray(spaceStart, spaceStart + spaceSize), ctx, m.position + spaceStart);
  if (!space.shape) return [];
  const count = elementCount(space.shape);
  return vlenCollections(m.data.subarray(c.pos), count, elementSize, ctx);
}

/** Distinct collection addresses of vlen elements (length u32, collection address, index u32). */
function vlenCollections(data: Uint8Array, count: number, elementSize: number, ctx: SizeContext): number[] {
  const out = new Set<number>();
  const O = ctx.offsetSize;
  if (elementSize < 4 + O + 4) return [];
  const c = new Cursor(data, ctx, "vlen elements");
  for (let i = 0; i < count && (i + 1) * elementSize <= data.length; i++) {
    c.seek(i * elementSize);
    const len = c.u32();
    const addr = c.offset();
    if (len > 0 && addr !== null && addr !== ctx.baseAddress) out.add(addr);
  }
  return [...out];
}
