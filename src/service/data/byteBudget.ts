/**
 * A budget of bytes shared by concurrent work (the decoded answers /slice is
 * producing at once): each caller takes a share and gives it back when done;
 * callers that do not fit wait in arrival order, for a bounded time. A share
 * larger than the whole budget is cut to the budget, so one large request
 * still runs, alone.
 */

/** Waited longer than allowed for a share of the budget. */
export class BudgetTimeoutError extends Error {
  override readonly name = "BudgetTimeoutError";
  constructor(
    readonly waitedMs: number,
    readonly bytes: number,
  ) {
    super(`waited ${waitedMs} ms for ${bytes} bytes of the budget`);
  }
}

interface Waiter {
  bytes: number;
  grant: () => void;
}

export class ByteBudget {
  private used = 0;
  private readonly queue: Waiter[] = [];

  constructor(readonly total: number) {
    if (!Number.isSafeInteger(total) || total < 1) throw new RangeError(`budget must be a positive integer, got ${total}`);
  }

  /** Bytes taken now. */
  get inUse(): number {
    return this.used;
  }

  /** Callers waiting. */
  get waiting(): number {
    return this.queue.length;
  }

  /** Takes `bytes` at once when they fit and nobody waits; else undefined (nothing taken). */
  tryAcquire(bytes: number): (() => void) | undefined {
    const share = Math.min(Math.max(0, Math.ceil(bytes)), this.total);
    if (this.queue.length > 0 || this.used + share > this.total) return undefined;
    this.used += share;
    return this.releaser(share);
  }

  /**
   * Takes `bytes` (at most the whole budget); resolves with the function that
   * gives them back (call it once; later calls do nothing). Rejects with
   * BudgetTimeoutError after `timeoutMs` of waiting, or with the signal's
   * reason when it aborts first (the caller went away: its place is given up).
   */
  acquire(bytes: number, timeoutMs: number, signal?: AbortSignal): Promise<() => void> {
    const share = Math.min(Math.max(0, Math.ceil(bytes)), this.total);
    if (signal?.aborted) return Promise.reject(signal.reason);
    // first come, first served: nobody overtakes a waiter
    const now = this.tryAcquire(share);
    if (now) return Promise.resolve(now);
    const release = this.releaser(share);
    return new Promise((resolve, reject) => {
      const leave = (error: unknown) => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", onAbort);
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(error);
        this.grantWaiting(); // the one leaving may have been blocking smaller requests behind it
      };
      const onAbort = () => leave(signal!.reason);
      const waiter: Waiter = {
        bytes: share,
        grant: () => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          resolve(release);
        },
      };
      const timer = setTimeout(() => leave(new BudgetTimeoutError(timeoutMs, share)), timeoutMs);
      signal?.addEventListener("abort", onAbort, { once: true });
      this.queue.push(waiter);
    });
  }

  private releaser(share: number): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.used -= share;
      this.grantWaiting();
    };
  }

  private grantWaiting(): void {
    while (this.queue.length > 0 && this.used + this.queue[0]!.bytes <= this.total) {
      const w = this.queue.shift()!;
      this.used += w.bytes;
      w.grant();
    }
  }
}
