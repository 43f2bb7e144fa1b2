/**
 * Inflating chunks on worker threads while the event loop does the rest of
 * a cold read (HTTP, splitting responses, zarrita, copying): a cold 100-chunk
 * /slice spends about half its event-loop time in node:zlib (BENCHMARKS.md).
 *
 * ZlibCodec hands a chunk over only when it is not the first one decoded in
 * the current event-loop turn: a read of one chunk, and the first chunk of
 * every burst, are still inflated on the spot (a hand-over costs a message
 * each way, ≈ 0.1 ms until the answer is back). Each worker takes at most
 * QUEUE_PER_WORKER chunks; beyond that the event loop inflates them itself,
 * so both sides stay busy. Errors are node:zlib's own (same code and
 * message as inflateSync); chunks a worker held when it died are inflated on
 * the event loop instead, and the next hand-over starts a new worker.
 */
import { Worker } from "node:worker_threads";
import { inflateSync } from "node:zlib";

/** Chunks waiting per worker before the event loop inflates the next ones itself. */
const QUEUE_PER_WORKER = 32;

// plain CommonJS (eval): no loader, no file to find
const WORKER_SOURCE = `
const { parentPort } = require("node:worker_threads");
const { inflateSync } = require("node:zlib");
parentPort.on("message", ({ id, input, chunkSize }) => {
  try {
    const out = inflateSync(input, chunkSize ? { chunkSize } : undefined);
    parentPort.postMessage({ id, output: out.buffer, offset: out.byteOffset, length: out.byteLength }, [out.buffer]);
  } catch (e) {
    parentPort.postMessage({ id, error: { message: e.message, code: e.code, errno: e.errno } });
  }
});
`;

interface Pending {
  input: Uint8Array;
  chunkSize: number | undefined;
  resolve: (out: Uint8Array) => void;
  reject: (e: unknown) => void;
}

interface WorkerSlot {
  worker: Worker;
  pending: Map<number, Pending>;
}

type Answer = { id: number; output: ArrayBuffer; offset: number; length: number } | { id: number; error: { message: string; code?: string; errno?: number } };

export interface InflateWorkerStats {
  /** Chunks inflated on a worker. */
  offloaded: number;
  /** Chunks a worker held when it died, inflated on the event loop instead. */
  recovered: number;
}

/** Inflates a zlib stream on this thread (`chunkSize`: node:zlib's output buffer size). */
export function inflateHere(input: Uint8Array, chunkSize: number | undefined): Uint8Array {
  const out = inflateSync(input, chunkSize ? { chunkSize } : undefined);
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

export class InflateWorkers {
  readonly stats: InflateWorkerStats = { offloaded: 0, recovered: 0 };
  private readonly slots: (WorkerSlot | undefined)[];
  private nextId = 0;
  private closed = false;
  /** Inflates started in this event-loop turn (reset by a setImmediate). */
  private turnCount = 0;
  private turnResetScheduled = false;

  constructor(readonly threads: number) {
    if (!Number.isInteger(threads) || threads < 1) throw new RangeError(`InflateWorkers: threads must be a positive integer, got ${threads}`);
    // started now, not on the first burst: a worker takes tens of ms to boot, and the chunks
    // handed to it would wait for that (a dead one is replaced on the next burst)
    this.slots = Array.from({ length: threads }, (_, i) => this.start(i));
  }

  /**
   * Inflates a zlib stream: on the spot for the first chunk of an event-loop
   * turn or when every worker's queue is full, else on a worker.
   */
  inflate(input: Uint8Array, chunkSize: number | undefined): Uint8Array | Promise<Uint8Array> {
    if (!this.turnResetScheduled) {
      this.turnResetScheduled = true;
      setImmediate(() => {
        this.turnCount = 0;
        this.turnResetScheduled = false;
      });
    }
    const slot = this.turnCount++ === 0 || this.closed ? undefined : this.leastBusy();
    if (!slot) return inflateHere(input, chunkSize);
    return this.send(slot, input, chunkSize);
  }

  /** Stops the workers; chunks they still hold are inflated on the event loop. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.slots.map((s, i) => (s ? this.retire(i, s) : undefined)));
  }

  private leastBusy(): WorkerSlot | undefined {
    let best: WorkerSlot | undefined;
    for (let i = 0; i < this.slots.length; i++) {
      const slot = (this.slots[i] ??= this.start(i));
      if (slot.pending.size < QUEUE_PER_WORKER && (!best || slot.pending.size < best.pending.size)) best = slot;
    }
    return best;
  }

  private start(index: number): WorkerSlot {
    const worker = new Worker(WORKER_SOURCE, { eval: true });
    const slot: WorkerSlot = { worker, pending: new Map() };
    worker.on("message", (a: Answer) => {
      const p = slot.pending.get(a.id);
      if (!p) return;
      slot.pending.delete(a.id);
      if (slot.pending.size === 0) worker.unref();
      if ("error" in a) p.reject(Object.assign(new Error(a.error.message), { code: a.error.code, errno: a.error.errno }));
      else {
        this.stats.offloaded++;
        p.resolve(new Uint8Array(a.output, a.offset, a.length));
      }
    });
    worker.on("error", () => void this.retire(index, slot));
    worker.on("exit", () => void this.retire(index, slot));
    worker.unref(); // an idle worker does not keep the process alive
    return slot;
  }

  /** Takes a worker out; what it held is inflated here (or fails as inflateSync would). */
  private async retire(index: number, slot: WorkerSlot): Promise<void> {
    if (this.slots[index] === slot) this.slots[index] = undefined;
    const held = [...slot.pending.values()];
    slot.pending.clear();
    for (const p of held) {
      this.stats.recovered++;
      try {
        p.resolve(inflateHere(p.input, p.chunkSize));
      } catch (e) {
        p.reject(e);
      }
    }
    slot.worker.removeAllListeners("message");
    await slot.worker.terminate().catch(() => undefined);
  }

  private send(slot: WorkerSlot, input: Uint8Array, chunkSize: number | undefined): Promise<Uint8Array> {
    const id = this.nextId++;
    // a copy goes over (transferred): the caller's bytes stay in the chunk cache
    const copy = new Uint8Array(input.byteLength);
    copy.set(input);
    return new Promise<Uint8Array>((resolve, reject) => {
      slot.pending.set(id, { input, chunkSize, resolve, reject });
      if (slot.pending.size === 1) slot.worker.ref(); // an answer is awaited
      slot.worker.postMessage({ id, input: copy, chunkSize }, [copy.buffer]);
    });
  }
}

// ---------------------------------------------------------------------------------------
// the process-wide pool ZlibCodec uses (zarrita makes codecs from its registry: no injection)

let shared: { pool: InflateWorkers; users: number } | undefined;

/** The pool ZlibCodec hands chunks to; undefined: inflate on the event loop. */
export function inflateWorkers(): InflateWorkers | undefined {
  return shared?.pool;
}

/**
 * Starts (or joins) the process-wide pool; the returned function leaves it
 * and the last one out stops the workers. The first caller's thread count
 * holds while the pool lives (a process runs one service). threads 0: no pool.
 */
export function useInflateWorkers(threads: number): () => Promise<void> {
  if (threads <= 0) return async () => undefined;
  const mine = (shared ??= { pool: new InflateWorkers(threads), users: 0 });
  mine.users++;
  let left = false;
  return async () => {
    if (left) return;
    left = true;
    mine.users--;
    if (mine.users === 0) {
      if (shared === mine) shared = undefined;
      await mine.pool.close();
    }
  };
}
