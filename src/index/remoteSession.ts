/**
 * The main-thread half of one remote build: answers the worker's blocking
 * block requests (phase A) from the block store, forwards phase B's exact
 * reads to the HTTP source, runs the prefetcher, and keeps the first I/O
 * error (the typed HTTP error the build fails with).
 */
import type { MessagePort } from "node:worker_threads";
import type { ByteSource } from "../hdf5/byteSource.ts";
import { BlockStore } from "./remoteBlockStore.ts";
import { Prefetcher, type PrefetchOptions, type PrefetchStats } from "./remotePrefetch.ts";
import { RangeCache } from "./remoteRangeCache.ts";
import { extraOverhead, SyncBridgeServer } from "./syncBridge.ts";
import type { MainMessage, WorkerMessage } from "./workerProtocol.ts";

export interface RemoteSessionOptions {
  source: ByteSource;
  port: MessagePort;
  sab: SharedArrayBuffer;
  blockSize: number;
  /** Bound of the main-side block store, bytes. */
  storeBytes: number;
  /** null/undefined: no prefetching. Prefetching starts when the worker picks the task up. */
  prefetch?: PrefetchOptions | null;
  /** Called once when the worker starts the task. */
  onStart?: () => void;
  /**
   * Opens an external raw data file named by the HDF5 file. Rejections are
   * passed to the worker as a failed read of that dataset; when
   * `isFatal(error)` they also fail the build (transport trouble rather than
   * a missing file). Absent: external files cannot be read.
   */
  openExternal?: (name: string) => Promise<ByteSource>;
  isFatal?: (error: unknown) => boolean;
}

export interface SessionStats {
  /** Blocking requests of the worker (phase A). */
  syncRequests: number;
  /** Of those, the ones that waited on the network (a new fetch or one in flight): the sequential round trips. */
  roundTrips: number;
  /** Of the round trips, those that had to send a new request (nothing was prefetched or in flight). */
  demandFetches: number;
  /** Exact (large, uncached) reads of phase A. */
  exactReads: number;
  /** Phase B reads, and those answered from the block store without a request. */
  phaseBReads: number;
  phaseBStoreHits: number;
  /** Phase B reads answered by the chunk indexes read ahead (RangeCache). */
  phaseBReadAhead: number;
  /** Prefetched blocks sent along with answers. */
  blocksPushed: number;
}

export class RemoteBuildSession {
  readonly stats: SessionStats = {
    syncRequests: 0,
    roundTrips: 0,
    demandFetches: 0,
    exactReads: 0,
    phaseBReads: 0,
    phaseBStoreHits: 0,
    phaseBReadAhead: 0,
    blocksPushed: 0,
  };
  readonly store: BlockStore;
  /** Chunk index ranges the prefetcher read ahead for phase B. */
  readonly ranges: RangeCache;
  readonly prefetcher: Prefetcher | null;
  private readonly server: SyncBridgeServer;
  private readonly port: MessagePort;
  private readonly source: ByteSource;
  private closed = false;
  private started = false;
  private _firstError: unknown = undefined;
  private hasError = false;
  private readonly externals = new Map<number, ByteSource>();
  private nextExternal = 1;

  constructor(private readonly opts: RemoteSessionOptions) {
    this.source = opts.source;
    this.port = opts.port;
    this.server = new SyncBridgeServer(opts.sab);
    this.store = new BlockStore(opts.source, opts.blockSize, opts.storeBytes);
    this.ranges = new RangeCache(opts.source, opts.storeBytes);
    this.prefetcher = opts.prefetch ? new Prefetcher(this.store, opts.prefetch, this.ranges) : null;
    this.port.on("message", (m: WorkerMessage) => this.onMessage(m));
  }

  /** The first I/O error met (undefined when none). */
  get firstError(): unknown {
    return this._firstError;
  }
  get failed(): boolean {
    return this.hasError;
  }

  get prefetchStats(): PrefetchStats | null {
    return this.prefetcher?.stats ?? null;
  }

  /** Ends the session: wakes a blocked worker (its reads fail), stops prefetching, frees the blocks. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.server.close();
    this.prefetcher?.stop();
    this.store.close();
    this.ranges.close();
    for (const src of this.externals.values()) void src.close?.().catch(() => undefined);
    this.externals.clear();
    this.port.removeAllListeners("message");
    this.port.close();
  }

  private recordError(e: unknown): void {
    if (!this.hasError) {
      this.hasError = true;
      this._firstError = e;
      this.prefetcher?.stop();
    }
  }

  private onMessage(m: WorkerMessage): void {
    if (this.closed) return;
    switch (m.t) {
      case "start":
        if (!this.started) {
          this.started = true;
          // not earlier: a build waiting in the queue should not hold prefetched bytes
          void this.prefetcher?.start();
          this.opts.onStart?.();
        }
        break;
      case "sync":
        void this.onSync(m.seq, m.runs, m.exact);
        break;
      case "used":
        this.store.markUsed(m.blocks);
        break;
      case "read":
        if (m.file === 0) void this.onRead(m.id, m.offset, m.length);
        else void this.onExternalRead(m.id, m.file, m.offset, m.length);
        break;
      case "open":
        void this.onOpen(m.id, m.name);
        break;
      case "close": {
        const src = this.externals.get(m.file);
        this.externals.delete(m.file);
        void src?.close?.().catch(() => undefined);
        break;
      }
    }
  }

  private async onSync(seq: number, runs: number[], exact: boolean): Promise<void> {
    this.stats.syncRequests++;
    try {
      let parts: Uint8Array[];
      if (exact) {
        this.stats.exactReads++;
        this.stats.roundTrips++;
        this.stats.demandFetches++;
        parts = await Promise.all(
          pairs(runs).map(async ([start, end]) => {
            const buf = await this.source.read(start, end - start);
            if (buf.byteLength < end - start) throw new Error(`short read: ${buf.byteLength} of ${end - start} bytes at ${start}`);
            return buf;
          }),
        );
      } else {
        const bs = this.store.blockSize;
        const results = await Promise.all(
          pairs(runs).map(([start, end]) => this.store.demand(Math.floor(start / bs), Math.floor((end - 1) / bs))),
        );
        const fetched = results.some((r) => r.fetched);
        if (fetched || results.some((r) => r.awaitedInFlight)) this.stats.roundTrips++;
        if (fetched) this.stats.demandFetches++;
        parts = results.flatMap((r) => r.parts);
      }
      if (this.closed) return;
      // fill the rest of the transfer area with prefetched blocks the walk will read next
      let room = this.server.capacity - extraOverhead(0);
      for (const p of parts) room -= p.byteLength;
      const extras = this.prefetcher ? this.store.takePushable(room, 8) : [];
      this.stats.blocksPushed += extras.length;
      this.server.respond(seq, parts, extras);
    } catch (e) {
      this.recordError(e);
      if (!this.closed) this.server.fail(seq);
    }
  }

  private async onRead(id: number, offset: number, length: number): Promise<void> {
    // phase B has begun, so the walk is over: nothing left to prefetch for
    if (this.stats.phaseBReads === 0) this.prefetcher?.stop();
    this.stats.phaseBReads++;
    let reply: MainMessage;
    try {
      let bytes = this.store.peek(offset, length);
      if (bytes) {
        this.stats.phaseBStoreHits++;
      } else {
        const ahead = this.ranges.take(offset, length);
        if (ahead) this.stats.phaseBReadAhead++;
        bytes = await (ahead ?? this.source.read(offset, length));
      }
      reply = { t: "read", id, bytes };
    } catch (e) {
      this.recordError(e);
      reply = { t: "read", id, error: e instanceof Error ? e.message : String(e) };
    }
    if (this.closed) return;
    try {
      this.port.postMessage(reply); // copied (the bytes may be shared with other readers)
    } catch {
      // port closed under us
    }
  }

  private reply(msg: MainMessage): void {
    if (this.closed) return;
    try {
      this.port.postMessage(msg);
    } catch {
      // port closed under us
    }
  }

  private externalError(e: unknown): string {
    if (this.opts.isFatal?.(e)) this.recordError(e);
    return e instanceof Error ? e.message : String(e);
  }

  private async onOpen(id: number, name: string): Promise<void> {
    try {
      if (!this.opts.openExternal) throw new Error("data stored in external raw files cannot be read from here");
      const src = await this.opts.openExternal(name);
      if (this.closed) {
        void src.close?.().catch(() => undefined);
        return;
      }
      const file = this.nextExternal++;
      this.externals.set(file, src);
      this.reply({ t: "open", id, file, size: src.size });
    } catch (e) {
      this.reply({ t: "open", id, error: this.externalError(e) });
    }
  }

  private async onExternalRead(id: number, file: number, offset: number, length: number): Promise<void> {
    try {
      const src = this.externals.get(file);
      if (!src) throw new Error("external file is not open");
      this.reply({ t: "read", id, bytes: await src.read(offset, length) });
    } catch (e) {
      this.reply({ t: "read", id, error: this.externalError(e) });
    }
  }
}

function pairs(flat: number[]): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) out.push([flat[i]!, flat[i + 1]!]);
  return out;
}
