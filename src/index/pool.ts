/**
 * The worker pool of index builds (piscina). One build per worker at a time
 * (phase A blocks its thread). A build whose worker dies (crash, exit, out of
 * memory) or is stopped (timeout, cancellation: piscina terminates a running
 * task's thread) fails alone; piscina starts a replacement thread and the
 * process stays up.
 */
import { availableParallelism } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { ResourceLimits } from "node:worker_threads";
import { Piscina } from "piscina";
import { BuildAbortedError, BuildQueueFullError, WorkerCrashedError } from "./remoteErrors.ts";
import type { WorkerResult, WorkerTask } from "./workerProtocol.ts";

export interface IndexPoolOptions {
  /** Worker threads. Default: the number of cores. */
  size?: number;
  /** Builds that may wait for a thread; more fail with BuildQueueFullError. Default unbounded. */
  maxQueue?: number;
  /**
   * V8 limits of each worker (heap sizes, stack). Default: 2 GiB old
   * generation. h5wasm's WebAssembly memory (up to 2 GiB) is not part of the
   * V8 heap and not limited by this.
   */
  resourceLimits?: ResourceLimits;
}

export const DEFAULT_RESOURCE_LIMITS: ResourceLimits = { maxOldGenerationSizeMb: 2048 };

function workerFilename(): string {
  const here = fileURLToPath(import.meta.url);
  // workerEntry.ts beside this file (workerEntry.js when compiled); it loads worker.ts
  return path.join(path.dirname(here), `workerEntry${path.extname(here)}`);
}

export class IndexWorkerPool {
  private readonly pool: Piscina<WorkerTask, WorkerResult>;
  private readonly maxQueue: number;
  private closed = false;
  /** Builds submitted and not finished (running or waiting). */
  private pending = 0;

  constructor(opts: IndexPoolOptions = {}) {
    const size = Math.max(1, Math.floor(opts.size ?? availableParallelism()));
    this.maxQueue = opts.maxQueue ?? Number.POSITIVE_INFINITY;
    this.pool = new Piscina<WorkerTask, WorkerResult>({
      filename: workerFilename(),
      minThreads: size,
      maxThreads: size,
      concurrentTasksPerWorker: 1,
      // piscina's maxQueue does not count tasks that carry an AbortSignal: bounded here instead
      idleTimeout: Number.POSITIVE_INFINITY,
      // the worker handles port messages after its task: no blocking wait for the next task
      atomics: "disabled",
      resourceLimits: opts.resourceLimits ?? DEFAULT_RESOURCE_LIMITS,
    });
    // a worker that dies outside a task must not take the process down; piscina replaces it
    this.pool.on("error", () => undefined);
  }

  /** Threads alive right now. */
  get threads(): number {
    return this.pool.threads.length;
  }
  get size(): number {
    return this.pool.options.maxThreads;
  }
  /** Builds waiting for a thread. */
  get queued(): number {
    return Math.max(0, this.pending - this.size);
  }
  /** False when a new build would be refused because the queue is full. */
  get hasRoom(): boolean {
    return this.pending - this.size < this.maxQueue;
  }
  /** Builds running or waiting. */
  get active(): number {
    return this.pending;
  }
  /** Fraction of the time the threads were busy. */
  get utilization(): number {
    return this.pool.utilization;
  }

  /**
   * Runs a build. Rejects with `signal.reason` when the signal fires (the
   * worker is terminated and replaced), with WorkerCrashedError when the
   * worker dies, with BuildQueueFullError when the queue is full.
   */
  async run(task: WorkerTask, signal: AbortSignal | undefined): Promise<WorkerResult> {
    if (this.closed) throw new BuildAbortedError(task.url, "the index builder is closed");
    if (!this.hasRoom) throw new BuildQueueFullError(task.url);
    this.pending++;
    try {
      return await this.pool.run(task, { transferList: [task.port] as never, signal: signal ?? null });
    } catch (e) {
      if (signal?.aborted) throw signal.reason;
      const msg = e instanceof Error ? e.message : String(e);
      if (msg === "Task queue is at limit" || msg.startsWith("No task queue available")) throw new BuildQueueFullError(task.url);
      if ((e as { name?: string } | null)?.name === "AbortError" || this.closed) {
        throw new BuildAbortedError(task.url, this.closed ? "the index builder is closed" : e);
      }
      throw new WorkerCrashedError(task.url, e);
    } finally {
      this.pending--;
    }
  }

  /** Stops every thread (running builds fail with BuildAbortedError). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.pool.destroy();
  }
}
