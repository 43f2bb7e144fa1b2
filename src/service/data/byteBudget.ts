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

  /**
   * Takes `bytes` (at most the whole budget); resolves with the function that
   * gives them back (call it once; later calls do nothing). Rejects with
   * BudgetTimeoutError after `timeoutMs` of waiting.
   */
  acquire(bytes: number, timeoutMs: number): Promise<() => void> {
    const share = Math.min(Math.max(0, Math.ceil(bytes)), this.total);
    const release = this.releaser(share);
    // first come, first served: nobody overtakes a waiter
    if (this.queue.length === 0 && this.used + share <= this.total) {
      this.used += share;
      return Promise.resolve(release);
    }
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        bytes: share,
        grant: () => {
          clearTimeout(timer);
          resolve(release);
        },
      };
      const timer = setTimeout(() => {
        const i = this.queue.indexOf(waiter);
        if (i >= 0) this.queue.splice(i, 1);
        reject(new BudgetTimeoutError(timeoutMs, share));
        this.grantWaiting(); // the head may have been the one blocking smaller requests behind it
      }, timeoutMs);
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
