/**
 * What the main thread and an index worker exchange: the task (piscina's
 * argument), the result, and the messages on the task's MessagePort.
 */
import type { MessagePort } from "node:worker_threads";

/** Test hooks that make the worker misbehave on purpose (only when the builder enables them). */
export type WorkerFault = "exit" | "uncaught" | "spin" | "oom";

export interface WorkerTask {
  /** Written into the refs. */
  url: string;
  /** File size (from the probe). */
  size: number;
  chunksThreshold: number | null;
  splitBytes: number | null;
  blockSize: number;
  /** Worker block cache bound, bytes. */
  cacheBytes: number;
  /** Longest single blocking wait before the worker gives up (safety net), ms. */
  waitTimeoutMs: number;
  /** Shared buffer of the blocking channel (see syncBridge.ts). */
  sab: SharedArrayBuffer;
  /** Port for the blocking channel's requests and for phase B's async reads. */
  port: MessagePort;
  fault?: WorkerFault;
}

/** An error as it crosses the thread boundary (class instances do not survive structured clone). */
export interface SerializedError {
  name: string;
  message: string;
  /** LindiConversionError fields. */
  objectPath?: string;
  reason?: string;
  stack?: string;
}

export interface WorkerStats {
  /** Reads h5wasm made. */
  reads: number;
  /** Of those, answered from the worker's block cache. */
  cacheHits: number;
  /** Blocking requests (sequential waits on the main thread). */
  waits: number;
  /** Milliseconds blocked in those waits. */
  waitedMs: number;
  blocksFetched: number;
  bypassReads: number;
  evictions: number;
  /** Blocks that came unasked with an answer, and those of them read. */
  blocksPushed: number;
  pushedUsed: number;
  /** Phase B reads, and those answered from the worker's block cache. */
  phaseBReads: number;
  phaseBCacheHits: number;
  phaseAMillis: number;
  totalMillis: number;
}

export type WorkerResult =
  | { ok: true; json: Uint8Array; stats: WorkerStats }
  | {
      ok: false;
      /** True when a read failed (the main thread holds the real, typed error). */
      ioFailed: boolean;
      error: SerializedError;
      stats: WorkerStats;
    };

/** Worker → main. */
export type WorkerMessage =
  | { t: "start" }
  | { t: "sync"; seq: number; runs: number[]; exact: boolean }
  /** Pushed blocks (see SyncBlockCache) that the walk has now read. */
  | { t: "used"; blocks: number[] }
  /** An exact async read of the file (file 0) or of an opened external raw data file. */
  | { t: "read"; id: number; offset: number; length: number; file: number }
  /** Open an external raw data file named by the HDF5 file (relative to its URL). */
  | { t: "open"; id: number; name: string }
  | { t: "close"; file: number };

/** Main → worker (answers to `read` and `open`). */
export type MainMessage =
  | { t: "read"; id: number; bytes: Uint8Array }
  | { t: "open"; id: number; file: number; size: number }
  | { t: "read" | "open"; id: number; error: string };
