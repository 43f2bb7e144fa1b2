/**
 * The index worker (a piscina task): builds the LINDI JSON of one remote file.
 *
 * Phase A (h5wasm walk) reads through a synchronous block cache whose misses
 * block this thread on a SharedArrayBuffer while the main thread fetches
 * (see syncBridge.ts). Phase B (layout reader) and emit run here too, with an
 * async ByteSource whose reads go to the main thread's HTTP source as exact
 * ranges, many in flight (cached blocks answer at once).
 *
 * Why phase B and emit run in the worker instead of shipping phase A's model
 * to the main thread: the model is not plain data — its values hold PyFloat
 * instances (a float that must print as `1.0`), and structured clone turns
 * class instances into plain objects, so the main thread would have to
 * rebuild them by walking every value. Emitting here avoids that and keeps
 * the CPU-heavy parts (Blosc encoding of inline chunks, JSON serialization of
 * documents that can reach hundreds of MB) off the service's event loop. Only
 * the serialized bytes cross back (transferred, not copied).
 */
import { move, transferableSymbol, valueSymbol } from "piscina";
import type { ByteSource } from "../hdf5/byteSource.ts";
import { CoalescingByteSource } from "../hdf5/coalescingSource.ts";
import { loadH5wasm, type SyncReader } from "../hdf5/h5wasmRuntime.ts";
import { LindiConversionError } from "../lindi/errors.ts";
import { indexHdf5 } from "../lindi/indexHdf5.ts";
import { stringifyPython } from "../lindi/pythonJson.ts";
import { SyncBlockCache } from "./remoteBlockCache.ts";
import { SyncBridgeClient } from "./syncBridge.ts";
import type { MainMessage, SerializedError, WorkerMessage, WorkerResult, WorkerStats, WorkerTask } from "./workerProtocol.ts";

/** Datasets whose layout/chunk index phase B reads at once (each read is a round trip). */
const REMOTE_DATASET_CONCURRENCY = 256;

const EIO = 29;

/** Marks a failed read so the walk's error is not mistaken for a property of the file. */
class RemoteReadError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RemoteReadError";
  }
}

function serializeError(e: unknown): SerializedError {
  if (e instanceof LindiConversionError) {
    return { name: e.name, message: e.message, objectPath: e.objectPath, reason: e.reason, stack: e.stack };
  }
  if (e instanceof Error) return { name: e.name, message: e.message, stack: e.stack };
  return { name: "Error", message: String(e) };
}

async function injectFault(fault: WorkerTask["fault"]): Promise<void> {
  switch (fault) {
    case undefined:
      return;
    case "exit":
      process.exit(70);
      break;
    case "uncaught":
      setImmediate(() => {
        throw new Error("injected uncaught exception in the index worker");
      });
      // the uncaught error, not a result, ends the task
      await new Promise<never>(() => undefined);
      break;
    case "spin":
      for (;;);
    case "oom": {
      const hog: unknown[] = [];
      for (;;) hog.push(new Array(1 << 16).fill({ x: hog.length }));
    }
  }
}

/**
 * Async requests to the main thread over the task's port: phase B's reads
 * (cached blocks answer at once, the rest are exact reads of the HTTP
 * source) and external raw data files.
 */
class MainChannel {
  private nextId = 0;
  private readonly pending = new Map<number, { resolve: (m: MainMessage) => void; reject: (e: Error) => void }>();
  reads = 0;
  cacheHits = 0;

  constructor(
    private readonly port: WorkerTask["port"],
    private readonly onReadFailure: () => void,
  ) {
    port.on("message", (m: MainMessage) => {
      const p = this.pending.get(m.id);
      if (!p) return;
      this.pending.delete(m.id);
      if ("error" in m) p.reject(new RemoteReadError(m.error));
      else p.resolve(m);
    });
  }

  private ask(msg: WorkerMessage & { id: number }): Promise<MainMessage> {
    return new Promise<MainMessage>((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.port.postMessage(msg);
    });
  }

  /**
   * The HDF5 file as phase B reads it: cached blocks answer at once; the
   * other reads of one turn are merged where they are close (sibling chunk
   * index nodes), then asked of the main thread.
   */
  source(size: number, cache: SyncBlockCache): ByteSource {
    const remote = new CoalescingByteSource({
      size,
      read: async (offset, length) => {
        try {
          const m = await this.ask({ t: "read", id: ++this.nextId, offset, length, file: 0 });
          return (m as { bytes: Uint8Array }).bytes;
        } catch (e) {
          this.onReadFailure();
          throw e;
        }
      },
    });
    return {
      size,
      read: async (offset, length) => {
        this.reads++;
        const hit = cache.peek(offset, length);
        if (hit) {
          this.cacheHits++;
          return hit;
        }
        return remote.read(offset, length);
      },
    };
  }

  /** External raw data files, opened by the main thread relative to the file's URL. */
  readonly openExternal = async (name: string): Promise<ByteSource> => {
    const opened = (await this.ask({ t: "open", id: ++this.nextId, name })) as { file: number; size: number };
    const file = opened.file;
    return {
      size: opened.size,
      read: async (offset, length) => {
        const m = await this.ask({ t: "read", id: ++this.nextId, offset, length, file });
        return (m as { bytes: Uint8Array }).bytes;
      },
      close: async () => {
        const msg: WorkerMessage = { t: "close", file };
        this.port.postMessage(msg);
      },
    };
  };

  /** Fails every request still waiting (the port is going away). */
  abandon(): void {
    for (const p of this.pending.values()) p.reject(new RemoteReadError("the I/O channel closed"));
    this.pending.clear();
  }
}

export default async function runIndexTask(task: WorkerTask): Promise<WorkerResult> {
  const t0 = performance.now();
  const port = task.port;
  const started: WorkerMessage = { t: "start" };
  port.postMessage(started);
  await injectFault(task.fault);

  const m = await loadH5wasm();
  const ErrnoError = (m.FS as unknown as { ErrnoError: new (errno: number) => Error }).ErrnoError;
  const bridge = new SyncBridgeClient(task.sab, port, task.waitTimeoutMs);
  let ioFailed = false;
  const cache = new SyncBlockCache(
    {
      size: task.size,
      blockSize: task.blockSize,
      maxBytes: task.cacheBytes,
      maxRequestBytes: bridge.capacity,
      onPushedUsed: (blocks) => {
        const msg: WorkerMessage = { t: "used", blocks };
        port.postMessage(msg);
      },
    },
    (runs, exact) => bridge.request(runs, exact),
  );
  const syncReader: SyncReader = (target, position) => {
    // After one failure every read fails at once: the walk ends quickly and
    // the build fails with the main thread's (typed) error.
    if (ioFailed) throw new ErrnoError(EIO);
    try {
      return cache.read(target, position);
    } catch {
      // HDF5 sees a failed read (EIO) and unwinds cleanly; the main thread has the real error
      ioFailed = true;
      throw new ErrnoError(EIO);
    }
  };
  const channel = new MainChannel(port, () => {
    ioFailed = true;
  });
  const source = channel.source(task.size, cache);
  const tA = performance.now();
  let phaseAMillis: number | null = null;
  const stats = (): WorkerStats => ({
    reads: cache.stats.reads,
    cacheHits: cache.stats.hits,
    waits: bridge.stats.waits,
    waitedMs: Math.round(bridge.stats.waitedMs),
    blocksFetched: cache.stats.blocksFetched,
    bypassReads: cache.stats.bypassReads,
    evictions: cache.stats.evictions,
    blocksPushed: cache.stats.blocksPushed,
    pushedUsed: cache.stats.pushedUsed,
    phaseBReads: channel.reads,
    phaseBCacheHits: channel.cacheHits,
    phaseAMillis: Math.round(phaseAMillis ?? performance.now() - tA),
    totalMillis: Math.round(performance.now() - t0),
  });

  try {
    // phase A ends when indexHdf5 first touches the async source
    const timedSource: ByteSource = {
      size: source.size,
      read: (offset, length) => {
        phaseAMillis ??= performance.now() - tA;
        return source.read(offset, length);
      },
    };
    const doc = await indexHdf5(task.size, syncReader, timedSource, {
      url: task.url,
      chunksThreshold: task.chunksThreshold,
      splitBytes: task.splitBytes,
      openExternalFile: channel.openExternal,
      // many datasets' chunk indexes in flight: remote reads are latency-bound
      concurrency: REMOTE_DATASET_CONCURRENCY,
    });
    if (ioFailed) {
      return { ok: false, ioFailed: true, error: { name: "RemoteReadError", message: "a read failed" }, stats: stats() };
    }
    const text = stringifyPython(doc as never);
    const json = new TextEncoder().encode(text);
    const result: WorkerResult = { ok: true, json, stats: stats() };
    // transfer the JSON bytes instead of copying them
    return move({ [transferableSymbol]: [json.buffer], [valueSymbol]: result } as never) as unknown as WorkerResult;
  } catch (e) {
    return { ok: false, ioFailed, error: serializeError(e), stats: stats() };
  } finally {
    channel.abandon();
    port.removeAllListeners("message");
    port.close();
  }
}
